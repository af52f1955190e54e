"""Alpine apk version ordering (apk-tools ``src/version.c``), token by token.

A version is digits separated by ``.``, an optional letter, suffixes (``_alpha < _beta <
_pre < _rc`` before the release; ``_cvs < _svn < _git < _hg < _p`` after it) with optional
numbers, then ``-rN``. Components after a ``.`` that start with ``0`` compare as fractions
(apk's "leading zero" rule). A version that stops parsing yields an INVALID token, after
which the comparison is decided by what was read so far (apk's own behaviour).
"""

from __future__ import annotations

INVALID, DIGIT_OR_ZERO, DIGIT, LETTER, SUFFIX, SUFFIX_NO, REVISION_NO, END = range(-1, 7)
PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")


class _Cursor:
    __slots__ = ("s", "i", "type")

    def __init__(self, s: str):
        self.s, self.i, self.type = s, 0, DIGIT

    def rest(self) -> int:
        return len(self.s) - self.i

    def next_token(self) -> None:
        s, i, t = self.s, self.i, self.type
        n = INVALID
        if i >= len(s):
            n = END
        elif t in (DIGIT, DIGIT_OR_ZERO) and s[i].islower():
            n = LETTER
        elif t == LETTER and s[i].isdigit():
            n = DIGIT
        elif t == SUFFIX and s[i].isdigit():
            n = SUFFIX_NO
        else:
            c = s[i]
            if c == ".":
                n = DIGIT_OR_ZERO
            elif c == "_":
                n = SUFFIX
            elif c == "-" and i + 1 < len(s) and s[i + 1] == "r":
                n = REVISION_NO
                i += 1
            i += 1
        if n < t and not ((n == DIGIT_OR_ZERO and t == DIGIT)
                          or (n == SUFFIX and t == SUFFIX_NO)
                          or (n == DIGIT and t == LETTER)):
            n = INVALID
        self.i, self.type = i, n

    def get_token(self) -> int:
        s, i, t = self.s, self.i, self.type
        if i >= len(s):
            self.type = END
            return 0
        v, nt = 0, INVALID
        if t == DIGIT_OR_ZERO and s[i] == "0":
            j = i
            while j < len(s) and s[j] == "0":
                j += 1
            v, nt, i = -(j - i), DIGIT, j
        elif t in (DIGIT_OR_ZERO, DIGIT, SUFFIX_NO, REVISION_NO):
            j = i
            while j < len(s) and s[j].isdigit():
                j += 1
            v = int(s[i:j]) if j > i else 0
            i = j
        elif t == LETTER:
            v, i = ord(s[i]), i + 1
        elif t == SUFFIX:
            for k, name in enumerate(PRE_SUFFIXES):
                if s.startswith(name, i):
                    v, i = k - len(PRE_SUFFIXES), i + len(name)
                    break
            else:
                for k, name in enumerate(POST_SUFFIXES):
                    if s.startswith(name, i):
                        v, i = k, i + len(name)
                        break
                else:
                    self.type = INVALID
                    return -1
        else:
            self.type = INVALID
            return -1
        self.i = i
        if i >= len(s):
            self.type = END
        elif nt != INVALID:
            self.type = nt
        else:
            self.next_token()
        return v


def compare(a: str, b: str) -> int:
    ca, cb = _Cursor(a.strip()), _Cursor(b.strip())
    av = bv = 0
    while ca.type == cb.type and ca.type not in (END, INVALID) and av == bv:
        av = ca.get_token()
        bv = cb.get_token()
    if av != bv:
        return -1 if av < bv else 1
    if ca.type == cb.type:
        return 0
    # Equal so far: the longer version wins, unless what follows is a pre-release suffix.
    if ca.type == SUFFIX and _Cursor_peek(ca) < 0:
        return -1
    if cb.type == SUFFIX and _Cursor_peek(cb) < 0:
        return 1
    if ca.type > cb.type:
        return -1
    if cb.type > ca.type:
        return 1
    return 0


def is_valid(text: str) -> bool:
    if not text or not text[0].isdigit():
        return False
    cursor = _Cursor(text)
    while cursor.type not in (END, INVALID):
        cursor.get_token()
    return cursor.type == END


def _Cursor_peek(c: _Cursor) -> int:  # noqa: N802 - mirrors apk's get_token on a copy
    copy = _Cursor(c.s)
    copy.i, copy.type = c.i, c.type
    return copy.get_token()
