"""Request serializers: each instance works on fields of its own, whatever it copied them from."""

from django.http import QueryDict
from rest_framework import serializers

from swr.api.serializers import ModelValidatedSerializer, RepositoryCreateSerializer


def test_each_serializer_binds_fields_of_its_own_and_leaves_the_declared_ones_alone():
    first, second = RepositoryCreateSerializer(data={}), RepositoryCreateSerializer(data={})
    declared = RepositoryCreateSerializer._declared_fields
    for name in declared:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name] is not declared[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
        assert first.fields[name].field_name == name
        assert (declared[name].parent, declared[name].field_name) == (None, None), "a declared field was bound"
    assert first.fields["repository"].source == "name"


def test_two_serializers_alive_at_once_each_read_their_own_body():
    # is_public accepts the strings "true"/"false" only from a form body: it asks its own serializer.
    from_form = RepositoryCreateSerializer(data=QueryDict("repository=busybox&is_public=true"))
    from_json = RepositoryCreateSerializer(data={"repository": "busybox", "is_public": "true"})
    assert from_form.fields
    assert from_json.fields
    assert not from_json.is_valid()
    assert from_form.is_valid(), from_form.errors
    assert from_form.validated_data["is_public"] is True
    assert "is_public" in from_json.errors


def test_a_nested_serializer_field_is_still_deep_copied():
    class Inner(serializers.Serializer):
        size = serializers.IntegerField()

    class Outer(ModelValidatedSerializer):
        inner = Inner()

    first, second = Outer(data={}), Outer(data={})
    assert first.fields["inner"] is not second.fields["inner"]
    assert first.fields["inner"].fields["size"] is not second.fields["inner"].fields["size"]
    assert Outer(data={"inner": {"size": 3}}).is_valid()
