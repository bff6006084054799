from localmesos.master.main import main

raise SystemExit(main())
