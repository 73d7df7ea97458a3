"""The Kubernetes client: the only module family importing the kubernetes library (workloads, secretRef reads)."""
