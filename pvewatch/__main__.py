from pvewatch.cli import main

raise SystemExit(main())
