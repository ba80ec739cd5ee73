"""Lint of `keywords:` documents: replies within LINE's limits, and keywords that never
answer (a flow starts on the same text, or an earlier keyword matches it first)."""

from __future__ import annotations

from bot.catalogue.lint.base import LinterBase
from bot.catalogue.models import KeywordRule, KeywordsDoc
from bot.catalogue.source import Document, PathItem, place
from bot.catalogue.text import normalise
from bot.line import limits


class KeywordLint(LinterBase):
    def keywords(self) -> None:
        seen: list[tuple[Document, list[PathItem], KeywordRule]] = []
        for doc in self.documents:
            if not isinstance(doc.model, KeywordsDoc):
                continue
            loc = doc.locator
            for index, rule in enumerate(doc.model.keywords):
                path: list[PathItem] = ["keywords", index]
                if rule.reply is not None:
                    self.reply_text(loc, [*path, "reply"], rule.reply)
                for number, message in enumerate(rule.messages):
                    self.message(loc, [*path, "messages", number], message)
                count = len(rule.messages) + (1 if rule.reply else 0)
                if count > limits.MAX_MESSAGES_PER_REQUEST:
                    self.report(
                        loc,
                        path,
                        f"keyword '{rule.match}' replies with {count} messages; LINE allows at"
                        f" most {limits.MAX_MESSAGES_PER_REQUEST} in one reply",
                    )
                self.actions(loc, [*path, "do"], rule.do)
                if loc.intact(path):  # its `match` and `mode` as written
                    self.shadowed(doc, [*path, "match"], rule, seen)
                    seen.append((doc, [*path, "match"], rule))

    def shadowed(
        self,
        doc: Document,
        path: list[PathItem],
        rule: KeywordRule,
        earlier: list[tuple[Document, list[PathItem], KeywordRule]],
    ) -> None:
        if rule.mode == "exact" and normalise(rule.match) in self.keyword_starts:
            first_doc, first_path, flow = self.keyword_starts[normalise(rule.match)]
            self.report(
                doc.locator,
                path,
                f"keyword '{rule.match}' never answers: it starts flow '{flow}'"
                f" ({place(first_doc, first_path, doc.file)}) first",
            )
            return
        for other_doc, other_path, other in earlier:
            if _shadows(other, rule):
                mode = "" if other.mode == "exact" else f" ({other.mode})"
                self.report(
                    doc.locator,
                    path,
                    f"keyword '{rule.match}' never answers: the keyword '{other.match}'{mode}"
                    f" at {place(other_doc, other_path, doc.file)} matches the same text first",
                )
                return


def _shadows(first: KeywordRule, later: KeywordRule) -> bool:
    """Does every text that `later` matches already match `first` (which is tried first)?"""
    a, b = first.match, later.match
    if later.mode == "exact":
        return first.matches(b.strip())
    if later.mode == "contains" and first.mode == "contains":
        return a in b
    if later.mode == "regex" and first.mode == "regex":
        return a == b
    return False
