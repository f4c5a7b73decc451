"""REST API v1 routes for local matches (node-private data; mounted under /api/v1/)."""

urlpatterns: list = []
