from shiyan.cli import main

raise SystemExit(main())
