"""The console scripts that compose the layers below them: `hs-export` (cli.export). They parse flags into a
frozen config, call one library function and print a summary; HsError becomes one line and a non-zero exit."""
