"""``python -m talkinghead.data.synthetic [OUTPUT]``: regenerate the docs' contact sheet."""

from talkinghead.data.synthetic.contact_sheet import _main

raise SystemExit(_main())
