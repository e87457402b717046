from .peers import main

main()
