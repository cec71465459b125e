"""The cluster dashboard: a web page on the API, served with a reverse proxy to the apiserver."""
