import contractdump

contractdump.main()
