"""The HTTP ingress controller add-on (as minikube's `ingress` add-on): routes requests by the
Ingresses of its IngressClass to Services' ready endpoints; `python -m ingress_controller`."""
