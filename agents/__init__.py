"""The Faust app factory, thin agents, the command line and embedded servers."""
