"""The Dockerfile language: ``lexer`` (directives, lines, continuations, here-documents), ``parser``
(validated instructions), ``ast`` (the parsed form), ``expand`` (quotes, escapes, ``$VAR`` substitution)."""
