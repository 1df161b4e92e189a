"""Context-free constraints: the grammar IR, its front ends (Lark, GBNF), and the Earley engine."""
