from mailbeacon.cli import main

main()
