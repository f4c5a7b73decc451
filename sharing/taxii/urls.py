"""TAXII 2.1 URL layout: discovery at /taxii2/, one API root at /taxii2/api/."""

from django.urls import path, re_path

from sharing.taxii import views

app_name = "taxii"

_root = f"{views.API_ROOT}/"
_collection = _root + "collections/<uuid:collection_id>/"
_object = _collection + "objects/<str:object_id>/"

urlpatterns = [
    path("", views.DiscoveryView.as_view(), name="discovery"),
    path(_root, views.ApiRootView.as_view(), name="api-root"),
    path(_root + "status/<uuid:status_id>/", views.StatusView.as_view(), name="status"),
    path(_root + "collections/", views.CollectionsView.as_view(), name="collections"),
    path(_collection, views.CollectionView.as_view(), name="collection"),
    path(_collection + "manifest/", views.ManifestView.as_view(), name="manifest"),
    path(_collection + "objects/", views.ObjectsView.as_view(), name="objects"),
    path(_object, views.ObjectView.as_view(), name="object"),
    path(_object + "versions/", views.VersionsView.as_view(), name="versions"),
    re_path(r"^.*$", views.unknown_taxii_path),
]
