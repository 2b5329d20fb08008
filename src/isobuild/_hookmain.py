"""The hook process's script: the runner is imported, not run, so its bytecode is cached."""
import _hookrunner

_hookrunner.main()
