"""Datasets: build them from videos (`prepare`), their on-disk format (`index`), episodes, synthetic heads."""
