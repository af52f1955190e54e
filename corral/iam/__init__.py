"""IAM and STS: credentials, principals, the authorization hook, the STS API."""
