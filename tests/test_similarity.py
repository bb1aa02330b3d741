from bot.ideas.similarity import most_similar, normalize, trigrams


def test_accents_and_case_do_not_matter() -> None:
    assert normalize("Sécurité ÉLEVÉE") == "securite elevee"
    assert trigrams("Sécurité") == trigrams("securite")


def test_similar_ideas_ranked_and_unrelated_left_out() -> None:
    candidates = [
        (1, "Plus de bancs publics dans les parcs"),
        (2, "Un numéro vert pour les victimes de violences"),
        (3, "Des bancs publics et des parcs plus sûrs"),
    ]
    found = most_similar("Installer des bancs dans les parcs publics", candidates)
    assert [cid for cid, _ in found][:2] in ([1, 3], [3, 1])
    assert 2 not in [cid for cid, _ in found]
    assert most_similar("", candidates) == []
