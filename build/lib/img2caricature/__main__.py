from img2caricature.cli import main

raise SystemExit(main())
