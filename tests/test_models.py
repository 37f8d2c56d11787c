"""Model validation (what the admin shows) and the database constraints behind it."""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import UniqueConstraint

from swr import names
from swr.choices import Category, PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, User

from .test_names import NAMESPACE_CASES, REPOSITORY_CASES, short_id

INVALID_REPOSITORY_NAMES = [name for name, fragment in REPOSITORY_CASES if fragment and "\x00" not in name]
INVALID_NAMESPACE_NAMES = [name for name, fragment in NAMESPACE_CASES if fragment and "\x00" not in name]


def _refused(write):
    """Run a write that must break a constraint; return True when the database refused it.

    PostgreSQL refuses an over-long value by its varchar length (DataError)
    before the CHECK (IntegrityError); SQLite by the CHECK. Both are refusals.
    """
    try:
        with transaction.atomic():
            write()
    except (IntegrityError, DataError):
        return True
    return False


@pytest.mark.django_db
class TestModelValidation:
    def test_invalid_repository_name_message_is_the_rule_message(self, namespace):
        repository = Repository(namespace=namespace, name="Nginx", is_public=True)
        with pytest.raises(ValidationError) as info:
            repository.full_clean()
        assert info.value.message_dict == {"name": [f"Invalid image name: {names.REPOSITORY.problem('Nginx')}"]}

    def test_too_long_name_has_one_message_only(self, namespace):
        """Django's generic max-length message must not stand beside the rule's own."""
        repository = Repository(namespace=namespace, name="a" * 129, is_public=True)
        with pytest.raises(ValidationError) as info:
            repository.full_clean()
        assert info.value.message_dict["name"] == [
            "Invalid image name: is 129 characters long; at most 128 are allowed"
        ]

    def test_invalid_category_lists_the_choices(self, namespace):
        repository = Repository(namespace=namespace, name="a", is_public=True, category="games")
        with pytest.raises(ValidationError) as info:
            repository.full_clean()
        (message,) = info.value.message_dict["category"]
        assert "'games'" in message
        assert "app_server" in message
        assert "arm" in message

    def test_duplicate_repository_is_reported_by_full_clean(self, namespace):
        Repository.objects.create(namespace=namespace, name="web", is_public=False)
        with pytest.raises(ValidationError) as info:
            Repository(namespace=namespace, name="web", is_public=False).full_clean()
        assert "already exists in this organization" in str(info.value)

    def test_grant_to_user_of_another_tenant_is_invalid(self, namespace, make_user, other_tenant):
        stranger = make_user("mallory", other_tenant)
        permission = NamespacePermission(namespace=namespace, user=stranger, level=PermissionLevel.READ)
        with pytest.raises(ValidationError, match="users of the same tenant"):
            permission.full_clean()


@pytest.mark.django_db(transaction=True)
class TestDatabaseConstraints:
    """Rows written past the validation (queryset updates, raw SQL) are refused by the database itself."""

    @pytest.mark.parametrize("bad_name", INVALID_REPOSITORY_NAMES, ids=short_id)
    def test_repository_name_check(self, namespace, bad_name):
        repository = Repository.objects.create(namespace=namespace, name="good", is_public=True)
        assert _refused(lambda: Repository.objects.filter(pk=repository.pk).update(name=bad_name))
        repository.refresh_from_db()
        assert repository.name == "good"

    @pytest.mark.parametrize("bad_name", INVALID_NAMESPACE_NAMES, ids=short_id)
    def test_namespace_name_check(self, namespace, bad_name):
        assert _refused(lambda: Namespace.objects.filter(pk=namespace.pk).update(name=bad_name))
        namespace.refresh_from_db()
        assert namespace.name == "group"

    def test_valid_names_pass_the_check(self, namespace):
        """The CHECK must not refuse what the rule allows (the longest and the trickiest names)."""
        for value, fragment in REPOSITORY_CASES:
            if fragment is None:
                Repository.objects.create(namespace=namespace, name=value, is_public=True)
        for value, fragment in NAMESPACE_CASES:
            if fragment is None and value != "group":
                Namespace.objects.create(name=value, tenant=namespace.tenant)
        assert Repository.objects.count() == sum(1 for _, f in REPOSITORY_CASES if f is None)

    def test_raw_sql_insert_is_refused(self, namespace):
        table = Repository._meta.db_table

        def insert():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (name, category, description, is_public, created_at, updated_at,"
                    " namespace_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    ["Bad Name", "other", "", True, "2026-01-01", "2026-01-01", namespace.pk],
                )

        assert _refused(insert)

    def test_category_check(self, namespace):
        repository = Repository.objects.create(namespace=namespace, name="a", is_public=True)
        assert _refused(lambda: Repository.objects.filter(pk=repository.pk).update(category="arms"))
        assert _refused(lambda: Repository.objects.filter(pk=repository.pk).update(category="games"))
        for category in Category.values:
            Repository.objects.filter(pk=repository.pk).update(category=category)

    def test_description_length_check(self, namespace):
        repository = Repository.objects.create(namespace=namespace, name="a", is_public=True)
        Repository.objects.filter(pk=repository.pk).update(description="x" * 1000)
        assert _refused(lambda: Repository.objects.filter(pk=repository.pk).update(description="x" * 1001))

    def test_permission_level_check(self, namespace, owner):
        permission = NamespacePermission.objects.get(namespace=namespace, user=owner)
        for bad_level in (0, 2, 4, 5, 6, 8):
            assert _refused(
                lambda level=bad_level: NamespacePermission.objects.filter(pk=permission.pk).update(level=level)
            )

    def test_namespace_name_unique_across_tenants(self, namespace, other_tenant):
        assert _refused(lambda: Namespace.objects.create(name="group", tenant=other_tenant))

    def test_repository_name_unique_within_namespace(self, namespace, other_tenant):
        Repository.objects.create(namespace=namespace, name="web", is_public=True)
        assert _refused(lambda: Repository.objects.create(namespace=namespace, name="web", is_public=False))
        other = Namespace.objects.create(name="other", tenant=other_tenant)
        Repository.objects.create(namespace=other, name="web", is_public=True)

    def test_one_grant_per_user_and_namespace(self, namespace, owner):
        assert _refused(
            lambda: NamespacePermission.objects.create(namespace=namespace, user=owner, level=PermissionLevel.READ)
        )

    def test_tenant_admin_needs_a_tenant(self, db):
        assert _refused(lambda: User.objects.create(username="root-admin", is_tenant_admin=True))

    def test_namespace_with_repositories_cannot_be_deleted(self, namespace):
        from django.db.models import ProtectedError

        Repository.objects.create(namespace=namespace, name="web", is_public=True)
        with pytest.raises(ProtectedError):
            namespace.delete()


@pytest.mark.parametrize("model", [m for m in apps.get_app_config("swr").get_models() if not m._meta.auto_created])
def test_no_index_on_one_column_that_a_wider_index_already_leads_with(model):
    # Every index costs each INSERT; one on a single column adds nothing when a wider b-tree index starts with it.
    meta = model._meta
    wider = [c.fields for c in meta.constraints if isinstance(c, UniqueConstraint) and len(c.fields) > 1]
    wider += [i.fields for i in meta.indexes if len(i.fields) > 1]
    leading = {meta.get_field(fields[0].lstrip("-")).column for fields in wider}
    single = [f.column for f in meta.concrete_fields if f.db_index and not f.unique]
    single += [
        meta.get_field(i.fields[0].lstrip("-")).column for i in meta.indexes if len(i.fields) == 1 and not i.opclasses
    ]
    assert not leading & set(single), f"{model.__name__}: covered by a wider index: {sorted(leading & set(single))}"


class TestNameColumnWidths:
    """Migrations record each name column's width (issue 12: NameField.deconstruct() dropped max_length, so a
    change of a rule's length was no migration of the column, and fresh and upgraded databases would differ)."""

    @pytest.mark.django_db
    @pytest.mark.parametrize(("model", "rule"), [("Namespace", "NAMESPACE"), ("Repository", "REPOSITORY")])
    def test_the_model_and_the_migrations_agree_with_the_rule(self, model, rule):
        from django.apps import apps
        from django.db import connection
        from django.db.migrations.loader import MigrationLoader

        from swr import names

        length = getattr(names, rule).max_length
        field = apps.get_model("swr", model)._meta.get_field("name")
        assert field.max_length == length
        assert field.deconstruct()[3]["max_length"] == length
        historical = MigrationLoader(connection).project_state().apps.get_model("swr", model)
        assert historical._meta.get_field("name").max_length == length

    def test_a_name_field_needs_its_width(self):
        from swr.models import NamespaceNameField

        with pytest.raises(TypeError, match="needs max_length"):
            NamespaceNameField()

    @pytest.mark.django_db
    def test_the_models_need_no_new_migration(self):
        from django.core.management import call_command

        call_command("makemigrations", "--check", "--dry-run", verbosity=0)
