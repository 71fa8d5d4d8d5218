"""Comments and tags through the API: viewers comment, editors tag, authors edit."""

from __future__ import annotations

from typing import Any

from recordings.access import Role
from recordings.models import ApiKey, Comment, Tag
from recordings.services.api_keys import api_key_create
from recordings.services.curation import comment_create
from tests.recordings.test_management_api import TenantsTestCase


class CurationApiCase(TenantsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.erin = self.make_teammate("erin", Role.EDITOR)
        code = self.own.recording.code
        self.comments = f"/api/v1/recordings/{code}/comments/"
        self.tags = f"/api/v1/recordings/{code}/tags/"

    def post(self, url: str, data: Any, **kwargs: Any) -> Any:
        return self.client.post(url, data, content_type="application/json", **kwargs)

    def patch(self, url: str, data: Any) -> Any:
        return self.client.patch(url, data, content_type="application/json")


class CommentApiTests(CurationApiCase):
    def test_viewers_comment_outsiders_do_not(self) -> None:
        self.client.force_login(self.bob)
        made = self.post(self.comments, {"text": " look here ", "offset_ms": 10})
        self.assertEqual(made.status_code, 201, made.content)
        self.assertEqual(made.json()["author"], "bob")
        self.assertEqual(Comment.objects.get().text, "look here")
        rows = self.client.get(self.comments).json()["results"]
        self.assertEqual([r["text"] for r in rows], ["look here"])
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.get(self.comments).status_code, 404)
        refused = self.post(self.comments, {"text": "x", "offset_ms": 0})
        self.assertEqual(refused.status_code, 404)

    def test_a_read_only_key_may_not_comment(self) -> None:
        key = ApiKey(user=self.bob, name="ci", access="read")
        secret = api_key_create(key=key, projects=[self.project])
        headers = {"Authorization": f"Bearer {secret}"}
        self.assertEqual(
            self.client.get(self.comments, headers=headers).status_code, 200
        )
        data = {"text": "x", "offset_ms": 0}
        self.assertEqual(
            self.post(self.comments, data, headers=headers).status_code, 403
        )

    def test_authors_edit_their_own_and_admins_delete_any(self) -> None:
        recording = self.own.recording
        bobs = comment_create(
            recording=recording, author=self.bob, text="bob's", offset_ms=0
        )
        alices = comment_create(
            recording=recording, author=self.alice, text="alice's", offset_ms=0
        )
        self.client.force_login(self.bob)
        edited = self.patch(f"/api/v1/comments/{bobs.pk}/", {"text": "better"})
        self.assertEqual(edited.json()["text"], "better")
        self.assertIsNotNone(edited.json()["edited"])
        url = f"/api/v1/comments/{alices.pk}/"
        self.assertEqual(self.patch(url, {"text": "mine"}).status_code, 403)
        self.assertEqual(self.client.delete(url).status_code, 403)
        self.client.force_login(self.alice)
        self.assertEqual(
            self.patch(f"/api/v1/comments/{bobs.pk}/", {"text": "x"}).status_code, 403
        )
        self.assertEqual(
            self.client.delete(f"/api/v1/comments/{bobs.pk}/").status_code, 204
        )
        self.assertEqual(
            list(Comment.objects.values_list("text", flat=True)), ["alice's"]
        )
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.delete(url).status_code, 404)


class TagApiTests(CurationApiCase):
    def test_editors_tag_viewers_do_not(self) -> None:
        self.client.force_login(self.bob)
        self.assertEqual(self.post(self.tags, {"name": "bug"}).status_code, 403)
        self.client.force_login(self.erin)
        made = self.post(self.tags, {"name": " checkout  bug "})
        self.assertEqual(made.status_code, 201, made.content)
        self.assertEqual(made.json()["name"], "checkout bug")
        rows = self.client.get(self.tags).json()["results"]
        self.assertEqual([r["name"] for r in rows], ["checkout bug"])
        vocabulary = f"/api/v1/projects/{self.project.code}/tags/"
        self.client.force_login(self.bob)
        names = [r["name"] for r in self.client.get(vocabulary).json()["results"]]
        self.assertEqual(names, ["checkout bug"])
        self.assertEqual(
            self.client.delete(f"{self.tags}checkout bug/").status_code, 403
        )
        self.client.force_login(self.erin)
        self.assertEqual(
            self.client.delete(f"{self.tags}Checkout Bug/").status_code, 204
        )
        self.assertEqual(
            self.client.delete(f"{self.tags}checkout bug/").status_code, 404
        )
        self.assertTrue(Tag.objects.filter(name="checkout bug").exists())

    def test_outsiders_see_no_tags(self) -> None:
        self.client.force_login(self.charlie)
        vocabulary = f"/api/v1/projects/{self.project.code}/tags/"
        self.assertEqual(self.client.get(vocabulary).status_code, 404)
        self.assertEqual(self.post(self.tags, {"name": "x"}).status_code, 404)
