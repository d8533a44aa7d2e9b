import cfxdemo_cli

cfxdemo_cli.main()
