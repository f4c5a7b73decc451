"""Web UI routes (server-rendered pages for reviewers and admins)."""

urlpatterns: list = []
