"""Elastic Load Balancing v2 (application load balancers): the API and the data plane."""
