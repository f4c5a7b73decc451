"""Tests for indicators.hashing: DOMAIN.md §3.3 test vectors, validation, keyring, prompts.

Plain pytest, no Django: ``pytest tests/indicators/test_hashing.py -p no:django``.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import re

import pytest

from indicators.hashing import (
    NORMALIZATIONS,
    HashingError,
    Keyring,
    account_pseudonym,
    api_key_fingerprint,
    hash_identifier,
    jaccard_estimate,
    keyed_hash,
    keyed_minhash,
    lsh_bands,
    normalize,
    normalize_domain,
    normalize_email,
    normalize_email_canonical,
    normalize_phone,
    normalize_prompt,
    payment_hash,
    phone_number_type,
    shingles,
    template_hmac,
)

ZERO_KEY = bytes(32)
OTHER_KEY = b"\x02" * 32
HEX_A = "aa" * 32
HEX_B = "bb" * 32
HEX_P = "cc" * 32


def _hmac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


# --- DOMAIN.md §3.3 test vectors (key = 32 zero bytes, key_id "mdx-test-0") ----------------

VECTORS = [
    (
        "email",
        "  John.Smith+promo@GoogleMail.com ",
        None,
        "john.smith+promo@googlemail.com",
        "ed38a0c12bff09400152eeea10aa56c9554308b56f07d19bf084131649b6fc43",
    ),
    (
        "email-canonical",
        "  John.Smith+promo@GoogleMail.com ",
        None,
        "johnsmith@gmail.com",
        "eff348c3c5f97d74b3c9457896ea9de6aa6258448ff5a93b461ea9d8901fa5cb",
    ),
    (
        "email-canonical",
        "Alice+x@Example.COM",
        None,
        "alice@example.com",
        "7224261626a706a1ecf8b827fc6dfd2ad70b7b6876dde5c0d0b5a12ac43fdd7d",
    ),
    (
        "email",
        "bob@Bücher.example",
        None,
        "bob@xn--bcher-kva.example",
        "de71afeb9cfb9e015b0f60b0afb7471310bc1671b2d0299b4dccccf531898c40",
    ),
    (
        "phone",
        "020 7946 0018",
        "GB",
        "+442079460018",
        "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926",
    ),
    (
        "phone",
        "+44 (0)20 7946 0018",
        None,
        "+442079460018",
        "19d08195f16d4a45324c6a42f7009ea0b6b4dd71ae9e7b3ab6aa07114e2ce926",
    ),
    (
        "org-domain",
        "example.edu",
        None,
        "example.edu",
        "5be82165e09e4d1aadc5db62538be6df6c78ba9e244f5b51a0df48a84ba47d1a",
    ),
]


@pytest.mark.parametrize(("identifier_type", "value", "region", "normalised", "expected"), VECTORS)
def test_it_reproduces_the_domain_test_vectors(identifier_type, value, region, normalised, expected):
    key = Keyring.for_tests().key("mdx-test-0")
    assert key == ZERO_KEY
    assert normalize(identifier_type, value, region=region) == normalised
    assert keyed_hash(key, identifier_type, normalised) == expected
    assert hash_identifier(identifier_type, value, key=key, region=region) == expected


def test_it_maps_every_identifier_type_to_its_normalisation():
    assert NORMALIZATIONS == {
        "email": "mdx-email-v1",
        "email-canonical": "mdx-email-canonical-v1",
        "phone": "mdx-phone-e164-v1",
        "org-domain": "mdx-domain-v1",
        "account-id": "raw",
        "device-id": "raw",
        "oauth-subject": "raw",
        "api-key": "raw",
    }


def test_the_mac_input_is_prefix_type_and_normalised_value():
    assert keyed_hash(OTHER_KEY, "device-id", "dev-1") == _hmac(OTHER_KEY, "mdx:v1:device-id:dev-1")


# --- Normalisation details ----------------------------------------------------------------


def test_email_splits_on_the_last_at_and_keeps_the_local_part_otherwise():
    assert normalize_email('"a@b"@Example.com.') == '"a@b"@example.com'


def test_email_applies_nfc_before_lowercasing():
    decomposed = "Jose\u0301@example.com"
    assert normalize_email(decomposed) == "jos\u00e9@example.com"


def test_canonical_email_strips_plus_for_every_domain_but_keeps_dots_and_hyphens_elsewhere():
    assert normalize_email_canonical("First.Last+tag+more@outlook.com") == "first.last@outlook.com"
    assert normalize_email_canonical("a-b.c@example.org") == "a-b.c@example.org"


def test_canonical_email_does_not_merge_other_provider_aliases():
    assert normalize_email_canonical("x@hotmail.com") != normalize_email_canonical("x@outlook.com")


def test_canonical_email_merges_gmail_dots_and_googlemail():
    assert normalize_email_canonical("J.O.H.N@gmail.com") == "john@gmail.com"
    assert normalize_email_canonical("john@googlemail.com") == "john@gmail.com"


def test_phone_region_is_case_insensitive():
    assert normalize_phone("020 7946 0018", "gb") == "+442079460018"


def test_phone_number_type_is_a_local_feature():
    assert phone_number_type("020 7946 0018", "GB") == "fixed"
    assert phone_number_type("07400 123456", "GB") == "mobile"
    assert phone_number_type("056 1234 5678", "GB") == "voip"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cs.example.edu", "example.edu"),
        ("CS.Example.EDU.", "example.edu"),
        ("www.cs.ox.ac.uk", "ox.ac.uk"),
        ("unsw.edu.au", "unsw.edu.au"),
        ("lab.Bücher.example", "xn--bcher-kva.example"),
        ("startup.io", "startup.io"),
    ],
)
def test_domain_is_lowercase_a_label_registrable(value, expected):
    assert normalize_domain(value) == expected


def test_raw_identifiers_are_hashed_as_given():
    assert normalize("account-id", " Acct-01") == " Acct-01"
    assert hash_identifier("oauth-subject", "sub|123", key=ZERO_KEY) == _hmac(
        ZERO_KEY, "mdx:v1:oauth-subject:sub|123"
    )


# --- Domain separation (DOMAIN.md §3.2) ---------------------------------------------------


def test_email_and_canonical_email_hash_differently_even_for_the_same_normal_form():
    value = "alice@example.com"
    assert normalize_email(value) == normalize_email_canonical(value)
    assert hash_identifier("email", value, key=ZERO_KEY) != hash_identifier(
        "email-canonical", value, key=ZERO_KEY
    )


def test_phone_and_account_id_with_the_same_text_hash_differently():
    assert keyed_hash(ZERO_KEY, "phone", "+442079460018") != keyed_hash(
        ZERO_KEY, "account-id", "+442079460018"
    )


def test_hashes_depend_on_the_key():
    assert hash_identifier("email", "a@example.com", key=ZERO_KEY) != hash_identifier(
        "email", "a@example.com", key=OTHER_KEY
    )


# --- Invalid inputs -------------------------------------------------------------------------


def test_it_rejects_an_invalid_phone_number_for_its_region():
    with pytest.raises(HashingError, match=r"phone '123' is not a valid number for region GB"):
        normalize_phone("123", "GB")


def test_it_rejects_a_national_phone_number_without_a_region():
    with pytest.raises(
        HashingError, match=r"phone '020 7946 0018' cannot be parsed without a default region"
    ):
        normalize_phone("020 7946 0018")


def test_it_rejects_text_that_is_not_a_phone_number():
    with pytest.raises(HashingError, match=r"phone 'call me' cannot be parsed for region US"):
        normalize_phone("call me", "US")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alice.example.com", r"email 'alice.example.com' has no '@'"),
        ("@example.com", r"has an empty local part"),
        ("alice@", r"has an empty domain"),
        ("alice@exa mple.com", r"has an invalid domain"),
        ("", r"email is empty"),
        ("   ", r"email is empty"),
    ],
)
def test_it_rejects_malformed_emails(value, message):
    with pytest.raises(HashingError, match=message):
        normalize_email(value)


def test_it_rejects_a_canonical_email_that_becomes_empty():
    with pytest.raises(HashingError, match=r"empty local part once canonicalised"):
        normalize_email_canonical("+tag@example.com")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost", r"is a public suffix"),
        ("co.uk", r"is a public suffix"),
        ("192.0.2.1", r"looks like an IP address"),
        ("a..example.com", r"invalid domain|empty label"),
        ("", r"domain is empty"),
    ],
)
def test_it_rejects_values_that_are_not_registrable_domains(value, message):
    with pytest.raises(HashingError, match=message):
        normalize_domain(value)


def test_it_rejects_unknown_identifier_types():
    with pytest.raises(HashingError, match=r"unknown identifier_type 'username'"):
        hash_identifier("username", "bob", key=ZERO_KEY)
    with pytest.raises(HashingError, match=r"unknown identifier_type 'username'"):
        keyed_hash(ZERO_KEY, "username", "bob")


def test_it_rejects_empty_raw_identifiers():
    with pytest.raises(HashingError, match=r"account-id is empty"):
        hash_identifier("account-id", "", key=ZERO_KEY)


@pytest.mark.parametrize("key", [b"", b"\x00" * 16, b"\x00" * 33, "0" * 32])
def test_it_rejects_keys_that_are_not_32_bytes(key):
    with pytest.raises(HashingError, match=r"key must be 32 bytes"):
        keyed_hash(key, "email", "a@example.com")


# --- API keys, cards, pseudonyms ---------------------------------------------------------------


def test_api_key_fingerprint_is_the_unkeyed_sha256_of_the_full_key():
    api_key = "sk-live-0123456789abcdef0123456789abcdef"
    assert api_key_fingerprint(api_key) == hashlib.sha256(api_key.encode()).hexdigest()


def test_api_keys_are_never_keyed_hashed():
    with pytest.raises(HashingError, match=r"use api_key_fingerprint"):
        hash_identifier("api-key", "sk-live-1", key=ZERO_KEY)
    with pytest.raises(HashingError, match=r"use api_key_fingerprint"):
        keyed_hash(ZERO_KEY, "api-key", "sk-live-1")


def test_it_rejects_an_empty_api_key():
    with pytest.raises(HashingError, match=r"api key is empty"):
        api_key_fingerprint("")


def test_pan_hash_is_keyed_over_the_digits():
    expected = _hmac(ZERO_KEY, "mdx:v1:pan:4111111111111111")
    assert payment_hash(ZERO_KEY, "pan", "4111111111111111") == expected
    assert payment_hash(ZERO_KEY, "pan", "4111 1111-1111 1111") == expected


def test_par_hash_is_keyed_over_the_reference():
    par = "V0010013018036776999993487523"
    assert len(par) == 29
    assert payment_hash(ZERO_KEY, "par", par) == _hmac(ZERO_KEY, f"mdx:v1:par:{par}")
    assert payment_hash(ZERO_KEY, "par", par.lower()) == payment_hash(ZERO_KEY, "par", par)


@pytest.mark.parametrize(
    ("basis", "value", "message"),
    [
        ("pan", "4111111111111112", r"pan fails the Luhn check"),
        ("pan", "41111111111", r"pan must have 12-19 digits, got 11"),
        ("pan", "41111111111111111111", r"pan must have 12-19 digits, got 20"),
        ("pan", "4111x11111111111", r"pan must contain only digits"),
        ("pan", "", r"pan is empty"),
        ("par", "V001001301803677699999348752", r"par must be 29 letters or digits, got 28"),
        ("par", "V001001301803677699999348752!", r"par must be 29 letters or digits"),
        ("iban", "GB00", r"unknown payment basis 'iban'"),
    ],
)
def test_it_rejects_invalid_payment_values(basis, value, message):
    with pytest.raises(HashingError, match=message):
        payment_hash(ZERO_KEY, basis, value)


def test_a_rejected_pan_is_not_echoed_in_the_error():
    with pytest.raises(HashingError) as excinfo:
        payment_hash(ZERO_KEY, "pan", "4111111111111112")
    assert "4111" not in str(excinfo.value)


def test_account_pseudonym_is_an_unprefixed_hmac_with_the_private_key():
    private_key = Keyring.for_tests().pseudonym_key
    assert private_key == b"\x01" * 32
    pseudonym = account_pseudonym(private_key, "acct-0001")
    assert pseudonym == _hmac(private_key, "acct-0001")
    assert pseudonym != keyed_hash(private_key, "account-id", "acct-0001")


def test_it_rejects_a_short_pseudonym_key():
    with pytest.raises(HashingError, match=r"pseudonym key must be 32 bytes, got 8"):
        account_pseudonym(b"\x01" * 8, "acct-0001")


# --- Keyring -------------------------------------------------------------------------------------


def _keyring_json(**overrides: object) -> str:
    data: dict[str, object] = {
        "current": "mdx-2026q4",
        "keys": {"mdx-2026q4": HEX_A, "mdx-2026q3": HEX_B},
        "pseudonym_key": HEX_P,
    }
    data.update(overrides)
    return json.dumps(data)


def test_keyring_loads_inline_json():
    keyring = Keyring.load(path=None, inline=_keyring_json())
    assert keyring.current == "mdx-2026q4"
    assert keyring.key() == bytes.fromhex(HEX_A)
    assert keyring.key("mdx-2026q3") == bytes.fromhex(HEX_B)
    assert keyring.pseudonym_key == bytes.fromhex(HEX_P)


def test_keyring_loads_a_file(tmp_path):
    path = tmp_path / "keyring.json"
    path.write_text(_keyring_json(), encoding="utf-8")
    assert Keyring.load(path=str(path), inline=None) == Keyring.from_json(_keyring_json())


def test_keyring_accepts_uppercase_hex():
    assert Keyring.from_json(_keyring_json(pseudonym_key=HEX_P.upper())).pseudonym_key == bytes.fromhex(HEX_P)


def test_keyring_for_tests_is_the_test_vector_key():
    keyring = Keyring.for_tests()
    assert keyring.keys == {"mdx-test-0": bytes(32)}
    assert keyring.current == "mdx-test-0"


def test_keyring_repr_does_not_show_keys():
    text = repr(Keyring.from_json(_keyring_json()))
    assert HEX_A not in text and "\\xaa" not in text and "\\xcc" not in text


def test_keyring_rejects_an_unknown_key_id():
    with pytest.raises(HashingError, match=r"unknown key id 'mdx-2025q1'"):
        Keyring.for_tests().key("mdx-2025q1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"keyring is not valid JSON"),
        ("[]", r"keyring JSON must be an object"),
        (json.dumps({"current": "k", "keys": {}}), r"keyring JSON is missing \['pseudonym_key'\]"),
        (_keyring_json(extra=1), r"keyring JSON has unknown fields \['extra'\]"),
        (_keyring_json(keys=[HEX_A]), r"keyring 'keys' must be an object"),
        (_keyring_json(keys={}), r"keyring has no keys"),
        (_keyring_json(current=1), r"keyring 'current' must be a key id string"),
        (_keyring_json(current="mdx-2026q1"), r"current key id 'mdx-2026q1' is not in keys"),
        (
            _keyring_json(keys={"mdx-2026q4": HEX_A[:62]}),
            r"keyring key 'mdx-2026q4' must be 64 hex characters",
        ),
        (
            _keyring_json(keys={"mdx-2026q4": "zz" * 32}),
            r"keyring key 'mdx-2026q4' must be 64 hex characters",
        ),
        (_keyring_json(keys={"MDX 2026": HEX_A}, current="MDX 2026"), r"key id 'MDX 2026' does not match"),
        (_keyring_json(pseudonym_key="00"), r"keyring pseudonym_key must be 64 hex characters"),
    ],
)
def test_keyring_rejects_bad_json(text, message):
    with pytest.raises(HashingError, match=message):
        Keyring.from_json(text)


def test_keyring_errors_do_not_echo_key_material():
    bad = "ab" * 31 + "zz"
    with pytest.raises(HashingError) as excinfo:
        Keyring.from_json(_keyring_json(keys={"mdx-2026q4": bad}))
    assert bad not in str(excinfo.value)


def test_keyring_validates_direct_construction():
    with pytest.raises(HashingError, match=r"keyring key 'k' must be 32 bytes, got 31"):
        Keyring(keys={"k": bytes(31)}, current="k", pseudonym_key=bytes(32))


@pytest.mark.parametrize(("path", "inline"), [(None, None), ("keyring.json", "{}")])
def test_keyring_load_needs_exactly_one_source(path, inline):
    with pytest.raises(HashingError, match=r"exactly one"):
        Keyring.load(path=path, inline=inline)


def test_keyring_load_reports_a_missing_file(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(HashingError, match=r"cannot read keyring file"):
        Keyring.load(path=missing, inline=None)


# --- Prompt signatures: mdx-prompt-v1 ---------------------------------------------------------

BASE_PROMPT = (
    "You are an expert Python engineer. Think step by step and show your full reasoning "
    "before answering. Write a function that parses the log file and returns the ten most "
    "frequent error codes, with unit tests and a short explanation of the complexity."
)
SIMILAR_PROMPT = BASE_PROMPT.replace("ten most", "twenty most")  # exact shingle Jaccard 0.79
UNRELATED_PROMPT = (
    "Summarise the plot of a nineteenth-century novel about a whaling voyage for a "
    "secondary school class, in the style of a newspaper review, avoiding spoilers."
)


def test_prompt_normalisation_applies_nfkc_casefold_and_collapses_whitespace():
    assert normalize_prompt("  ＨＥＬＬＯ\t\n Straße  ") == ["hello", "strasse"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("see https://example.com/a?b=1.", ["see", "<", "url", ">", "."]),
        ("mail Foo.Bar+x@Example.org now", ["mail", "<", "email", ">", "now"]),
        ("id 123e4567-E89B-12d3-a456-426614174000", ["id", "<", "id", ">"]),
        ("hex deadbeef0123456789abcdef", ["hex", "<", "id", ">"]),
        ("b64 aGVsbG8gd29ybGQxMjM0NQ==", ["b64", "<", "id", ">"]),
        ("pi is 3.14 or 42", ["pi", "is", "<", "num", ">", "or", "<", "num", ">"]),
    ],
)
def test_prompt_normalisation_masks_urls_emails_ids_and_numbers(text, tokens):
    assert normalize_prompt(text) == tokens


def test_prompt_normalisation_keeps_long_words_and_short_hex():
    assert normalize_prompt("internationalisation cafe12") == ["internationalisation", "cafe12"]


def test_prompts_that_differ_only_in_masked_values_normalise_alike():
    first = "Order 1234 from bob@example.com at https://shop.example/o/1234"
    second = "ORDER 98 from alice@example.net at http://other.example/x"
    assert normalize_prompt(first) == normalize_prompt(second)


def test_fewer_than_five_tokens_make_one_shingle():
    assert shingles(["a", "b", "c"]) == {"a b c"}
    assert shingles(["a", "b", "c", "d", "e"]) == {"a b c d e"}
    assert shingles([]) == set()


def test_shingles_are_word_five_grams():
    tokens = ["a", "b", "c", "d", "e", "f", "g"]
    assert shingles(tokens) == {"a b c d e", "b c d e f", "c d e f g"}
    assert shingles(tokens, k=6) == {"a b c d e f", "b c d e f g"}


def _signature(text: str, key: bytes = ZERO_KEY) -> list[int]:
    return keyed_minhash(key, shingles(normalize_prompt(text)))


def test_keyed_minhash_has_128_uint32_values_and_is_deterministic():
    signature = _signature(BASE_PROMPT)
    assert len(signature) == 128
    assert all(0 <= value < 2**32 for value in signature)
    assert signature == _signature(BASE_PROMPT)


def test_keyed_minhash_matches_the_datasketch_legacy_golden_values():
    # Computed with datasketch 2.0.0, MinHash(num_perm=128, seed=1, hashfunc=h, scheme="legacy").
    shingle_set = {
        "write a python function that",
        "a python function that sorts",
        "python function that sorts a",
    }
    assert keyed_minhash(ZERO_KEY, shingle_set)[:8] == [
        426930424, 1281459584, 540070076, 661465679, 903670317, 2040678855, 1037494028, 303036724,
    ]  # fmt: skip


def test_keyed_minhash_depends_on_the_key():
    assert jaccard_estimate(_signature(BASE_PROMPT), _signature(BASE_PROMPT, OTHER_KEY)) < 0.2


def test_similar_prompts_have_high_jaccard_and_share_an_lsh_band():
    base_set, similar_set = (
        shingles(normalize_prompt(BASE_PROMPT)),
        shingles(normalize_prompt(SIMILAR_PROMPT)),
    )
    exact = len(base_set & similar_set) / len(base_set | similar_set)
    base, similar, unrelated = (
        _signature(BASE_PROMPT),
        _signature(SIMILAR_PROMPT),
        _signature(UNRELATED_PROMPT),
    )
    assert jaccard_estimate(base, base) == 1.0
    assert jaccard_estimate(base, similar) > 0.7
    assert abs(jaccard_estimate(base, similar) - exact) < 0.1
    assert jaccard_estimate(base, unrelated) < 0.1
    assert set(lsh_bands(base)) & set(lsh_bands(similar))
    assert not set(lsh_bands(base)) & set(lsh_bands(unrelated))


def test_lsh_bands_are_sixteen_numbered_sha256_prefixes():
    signature = _signature(BASE_PROMPT)
    bands = lsh_bands(signature)
    assert len(bands) == 16
    assert all(re.fullmatch(r"\d\d:[0-9a-f]{16}", band) for band in bands)
    assert [band[:3] for band in bands] == [f"{i:02d}:" for i in range(16)]
    first_band = b"".join(value.to_bytes(4, "little") for value in signature[:8])
    assert bands[0] == "00:" + hashlib.sha256(first_band).hexdigest()[:16]


def test_it_rejects_sketches_it_cannot_band_or_compare():
    with pytest.raises(HashingError, match=r"needs 128 MinHash values, got 127"):
        lsh_bands([0] * 127)
    with pytest.raises(HashingError, match=r"unsigned 32-bit"):
        lsh_bands([2**32] * 128)
    with pytest.raises(HashingError, match=r"lengths 128 and 64"):
        jaccard_estimate([0] * 128, [0] * 64)


def test_it_rejects_an_empty_prompt():
    with pytest.raises(HashingError, match=r"empty prompt"):
        keyed_minhash(ZERO_KEY, shingles(normalize_prompt("   ")))
    with pytest.raises(HashingError, match=r"empty prompt"):
        template_hmac(ZERO_KEY, " \n ")


def test_template_hmac_masks_quoted_backticked_and_fenced_spans():
    first = (
        'Translate "good morning" into `French`, then explain:\n'
        "```python\nprint(1)\n```\nDon't use 'slang'."
    )
    second = "Translate “see you soon” into `German`, then EXPLAIN:\n```\nx = `y`\n```\nDon't use 'idioms'."
    assert template_hmac(ZERO_KEY, first) == template_hmac(ZERO_KEY, second)
    assert template_hmac(ZERO_KEY, first) != template_hmac(ZERO_KEY, "Summarise `this` please")
    assert template_hmac(ZERO_KEY, first) != template_hmac(OTHER_KEY, first)


def test_template_hmac_keeps_apostrophes_as_text():
    assert template_hmac(ZERO_KEY, "don't stop") != template_hmac(ZERO_KEY, "won't stop")


def test_keyed_minhash_equals_datasketch_legacy_minhash():
    import datasketch  # a test dependency: the reference implementation

    shingle_set = shingles(normalize_prompt(BASE_PROMPT + " " + UNRELATED_PROMPT))

    def hashfunc(shingle: str) -> int:
        return int.from_bytes(hmac.new(ZERO_KEY, shingle.encode(), hashlib.sha256).digest()[:4], "little")

    options = {"scheme": "legacy"} if "scheme" in inspect.signature(datasketch.MinHash).parameters else {}
    reference = datasketch.MinHash(num_perm=128, seed=1, hashfunc=hashfunc, **options)
    for shingle in shingle_set:
        reference.update(shingle)
    assert keyed_minhash(ZERO_KEY, shingle_set) == [int(value) for value in reference.hashvalues]
    for seed in (0, 7, 2**32 - 1):
        other = datasketch.MinHash(num_perm=32, seed=seed, hashfunc=hashfunc, **options)
        for shingle in shingle_set:
            other.update(shingle)
        assert keyed_minhash(ZERO_KEY, shingle_set, num_perm=32, seed=seed) == [
            int(v) for v in other.hashvalues
        ]
