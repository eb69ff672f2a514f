"""Elasticsearch as ApeRAG's full-text index (aperag/index/fulltext_index.py) uses it, as plain data.

ApeRAG creates one index per collection whose `content` is analysed by the IK plugin (`ik_max_word` when indexing,
`ik_smart` when searching); without IK that index cannot be created and the collection never becomes active. It
indexes one document at a time (`{"name", "content"}`, id = the document id), extracts keywords from a query with
`_analyze` and `ik_smart`, and searches with a `bool` of `should` matches, 80% of which must match.
"""

from __future__ import annotations

from typing import Any

IK_INDEX_ANALYZER = "ik_max_word"
IK_SEARCH_ANALYZER = "ik_smart"
MINIMUM_SHOULD_MATCH = "80%"


def aperag_mapping() -> dict[str, Any]:
    return {
        "properties": {
            "content": {"type": "text", "analyzer": IK_INDEX_ANALYZER, "search_analyzer": IK_SEARCH_ANALYZER}
        }
    }


def keyword_query(keywords: list[str]) -> dict[str, Any]:
    return {
        "bool": {
            "should": [{"match": {"content": keyword}} for keyword in keywords],
            "minimum_should_match": MINIMUM_SHOULD_MATCH,
        }
    }


def names_missing_ik(error_text: str) -> bool:
    """Whether an `_analyze` error says the IK analyzer is not there (the plugin is not installed)."""
    text = error_text.lower()
    return "failed to find" in text and "analyzer" in text and IK_SEARCH_ANALYZER in text
