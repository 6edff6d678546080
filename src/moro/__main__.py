from moro.cli import main

raise SystemExit(main())
