from kmf.cli import main

raise SystemExit(main())
