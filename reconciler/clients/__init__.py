"""Shared clients below the systems: the HTTP retry policy (http.py) and the Kubernetes client (kube/)."""
