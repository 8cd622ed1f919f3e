"""Post files: front matter validation, translations, unknown slugs, read_post."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_fixtures import TOPICS, post_text, write_posts

from shiyan.site import PostError, default_posts_dir, read_post
from shiyan.site.posts import collect_posts, parse_post

SLUGS = [t.slug for t in TOPICS]


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_post_body_has_no_front_matter(tmp_path):
    path = _write(tmp_path, "fake-softmax.en.md", post_text("fake-softmax", "en"))
    post = parse_post(path)
    assert (post.slug, post.lang) == ("fake-softmax", "en")
    assert post.body.lstrip().startswith("## The idea")
    assert "slug:" not in post.body


@pytest.mark.parametrize(
    ("front", "expect"),
    [
        ("slug: fake-softmax\nlang: en\ntitle: Softmax\n", "unexpected title"),
        ("slug: fake-softmax\n", "missing lang"),
        ("lang: en\n", "missing slug"),
        ("slug: [fake-softmax\nlang: en\n", "not valid YAML"),
        ("- slug\n- lang\n", "must be a mapping"),
        ("slug: other-slug\nlang: en\n", "does not match the file name"),
        ("slug: fake-softmax\nlang: fr\n", "lang must be one of zh, en"),
        ("slug: fake-softmax\nlang: zh\n", "lang 'zh' does not match the file name"),
    ],
)
def test_malformed_front_matter_names_the_file(tmp_path, front, expect):
    path = _write(tmp_path, "fake-softmax.en.md", f"---\n{front}---\n\nbody\n")
    with pytest.raises(PostError) as info:
        parse_post(path)
    assert str(path) in str(info.value)
    assert expect in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("fake-softmax.en.md", "no front matter\n", "must start with YAML front matter"),
        ("fake-softmax.en.md", "---\nslug: fake-softmax\nlang: en\n---\n\n  \n", "no body"),
        ("fake-softmax.fr.md", "---\nslug: fake-softmax\nlang: fr\n---\nbody\n", "must be one of zh, en"),
        ("Fake_Softmax.md", "---\nslug: fake-softmax\nlang: en\n---\nbody\n", "<slug>.<lang>.md"),
    ],
)
def test_bad_files(tmp_path, name, text, expect):
    path = _write(tmp_path, name, text)
    with pytest.raises(PostError, match=expect) as info:
        parse_post(path)
    assert str(path) in str(info.value)


def test_post_error_is_a_value_error():
    assert issubclass(PostError, ValueError)


def test_collect_posts_accepts_a_complete_set(tmp_path):
    posts = collect_posts(write_posts(tmp_path / "posts"), SLUGS)
    assert sorted(posts) == sorted(SLUGS)
    assert all(sorted(by_lang) == ["en", "zh"] for by_lang in posts.values())


def test_missing_translation_names_the_missing_file(tmp_path):
    posts_dir = write_posts(tmp_path / "posts")
    (posts_dir / "fake-softmax.en.md").unlink()
    with pytest.raises(PostError, match="missing translation") as info:
        collect_posts(posts_dir, SLUGS)
    assert str(posts_dir / "fake-softmax.en.md") in str(info.value)
    # Not even the lenient mode accepts a half-translated topic.
    with pytest.raises(PostError, match="missing translation"):
        collect_posts(posts_dir, SLUGS, require_all=False)


def test_topic_without_posts(tmp_path):
    posts_dir = write_posts(tmp_path / "posts", TOPICS[:2])
    with pytest.raises(PostError, match="fake-softmax.zh.md.*has no post"):
        collect_posts(posts_dir, SLUGS)
    assert sorted(collect_posts(posts_dir, SLUGS, require_all=False)) == sorted(SLUGS[:2])


def test_post_for_unknown_slug(tmp_path):
    posts_dir = write_posts(tmp_path / "posts")
    stray = _write(posts_dir, "not-a-topic.zh.md", "---\nslug: not-a-topic\nlang: zh\n---\n\n正文\n")
    with pytest.raises(PostError, match="no topic has the slug 'not-a-topic'") as info:
        collect_posts(posts_dir, SLUGS)
    assert str(stray) in str(info.value)


def test_read_post(tmp_path):
    posts_dir = write_posts(tmp_path / "posts")
    body = read_post("fake-random-walk", "zh", posts_dir)
    assert body == post_text("fake-random-walk", "zh").split("---\n", 2)[2]
    assert "随机游走" in body
    with pytest.raises(PostError, match="no such post"):
        read_post("fake-random-walk", "zh", tmp_path / "elsewhere")
    with pytest.raises(PostError, match="lang must be one of"):
        read_post("fake-random-walk", "de", posts_dir)


def test_default_posts_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIYAN_POSTS_DIR", str(tmp_path))
    assert default_posts_dir() == tmp_path.resolve()
    monkeypatch.delenv("SHIYAN_POSTS_DIR")
    import shiyan

    repo_posts = default_posts_dir()
    assert repo_posts.parts[-2:] == ("docs", "posts")
    assert repo_posts.parent.parent == Path(shiyan.__file__).resolve().parents[2]
