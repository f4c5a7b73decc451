"""REST API v1 (Django REST framework) for what TAXII does not cover."""
