"""Constrained decoding for masked diffusion language models (LLaDA, Dream, MDLM).

A diffusion LM fills a canvas of masked positions over several denoising steps, committing tokens
in any order, so left-to-right masking does not apply.  Here:

- :mod:`.adapters`: one denoiser interface over the three families' output conventions;
- :mod:`.schedules`: tokens per step, semi-autoregressive blocks, remasking rules (positions
  are chosen from the *unconstrained* confidences);
- :mod:`.token_dfa`: token-level DFAs with EOS padding, explicit or over a CompiledGrammar;
- :mod:`.slots`: one step as the constraint sees it (committed / candidate / masked positions);
- :mod:`.dingo`: DINGO, the most probable completable assignment of a step (Viterbi);
- :mod:`.filtering`: exact constrained sampling of a step by forward filtering over sets of
  states, and the exact step normalizer;
- :mod:`.smc`: SMC over denoising steps, weighted by the step normalizers, targeting the
  model conditioned on the constraint;
- :mod:`.completability`: whether a partial canvas can still be completed under a context-free
  grammar (:class:`~constrain.cfg.engine.CompiledCFG`), with witnesses;
- :mod:`.rejection`: context-free constraints in the loop — propose, check, mask and retry
  (``"sample"``, every output in the language), and SMC weighted by unbiased AWRS estimates of
  the accepted mass (``"smc"``);
- :mod:`.api`: :func:`generate`; :mod:`.exact` and :mod:`.toys`: exact answers for tests.

Regular constraints (regexes and non-recursive JSON Schemas, through
:class:`~constrain.compiler.CompiledGrammar`) get every method; context-free grammars
(``compile_lark`` / ``compile_gbnf``) get ``"unconstrained"``, ``"sample"`` and ``"smc"``.

>>> from constrain.diffusion import DiffusionAdapter, generate              # doctest: +SKIP
>>> adapter = DiffusionAdapter(model, mask_id=126336, convention="llada")   # doctest: +SKIP
>>> res = generate(adapter, prompt_ids, grammar, gen_length=64, steps=32, block_length=16,
...                method="dingo")                                          # doctest: +SKIP
"""

from .adapters import CONVENTIONS, DiffusionAdapter, Denoiser
from .api import METHODS, generate
from .completability import CanvasChecker, Verdict
from .dingo import Assignment, dingo
from .errors import UnsatisfiableError
from .filtering import StepFilter, forward_filter
from .loop import DiffusionResult, DiffusionSample
from .rejection import RejectionSample, RejectionSMC
from .schedules import REMASKING, plan
from .slots import OPEN, Slots
from .token_dfa import DEAD, FINAL, GrammarTokenDFA, TableTokenDFA, TokenDFA, as_token_dfa

__all__ = [
    "Assignment",
    "CONVENTIONS",
    "CanvasChecker",
    "DEAD",
    "Denoiser",
    "DiffusionAdapter",
    "DiffusionResult",
    "DiffusionSample",
    "FINAL",
    "GrammarTokenDFA",
    "METHODS",
    "OPEN",
    "REMASKING",
    "RejectionSMC",
    "RejectionSample",
    "Slots",
    "StepFilter",
    "TableTokenDFA",
    "TokenDFA",
    "UnsatisfiableError",
    "Verdict",
    "as_token_dfa",
    "dingo",
    "forward_filter",
    "generate",
    "plan",
]
