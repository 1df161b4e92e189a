"""``$ref`` and ``$dynamicRef`` resolved as ``jsonschema.Draft202012Validator`` resolves them.

The compiler moves subschemas around (a ``$ref`` target merged with its siblings, ``allOf``
branches merged together, ``anyOf`` siblings distributed into the branches), and merging drops
``$id``. A relative reference, or a ``$dynamicRef`` whose target depends on the resources it was
reached through, would then mean something else. So before compiling, ``LinkedSchema`` resolves
every reference once, with the ``referencing`` library the validator itself uses, and rewrites the
schema into a *linked* document where the meaning of a subschema no longer depends on its place:

- each reference target (an absolute URI reached under a given base URI and dynamic scope) gets
  a copy of its schema in the linked root's ``$defs``, and every reference to it becomes the
  local pointer ``#/$defs/<n>``: the pointer stands for the absolute target;
- the copies carry no ``$id``, ``$anchor``, ``$dynamicAnchor``, ``$schema`` or ``$defs`` (none of
  them validates anything), so the base URI is the same everywhere in the linked document;
- a ``$dynamicRef`` is resolved against the dynamic scope it is reached in (a target is copied
  once per scope where that can matter) and becomes a plain ``$ref``;
- subschemas are reached as the validator reaches them: ``validator.descend`` (most applicators,
  reference targets) moves to the subschema's ``$id``, ``validator.evolve(...).is_valid``
  (``not``, ``if``, ``contains``) keeps the parent's base URI; a ``oneOf`` branch past the first
  is read either way (by ``descend`` while no earlier branch is valid), refused (keyword ``$id``)
  where its identifier would change what its references mean;
- a subschema evaluated by an older draft's rules (the validator switches class where a subschema
  or a reference target declares that draft in ``$schema``, and keeps it below and through
  references) is copied as the draft 2020-12 schema with the same verdicts
  (``constrain.schema_dialects.translate``; each target is copied once per class it is reached
  in). What has no exact translation is linked to a pointer with no target, refused as keyword
  ``$schema`` where the compiler meets it. So is a draft 2020-12 ``unevaluatedProperties`` or
  ``unevaluatedItems`` whose annotations come from a translated subschema whose annotating
  keywords the translation changed (the validator collects them from the original's keywords).

The validator gives the linked document the verdicts it gives the original (a copy validates
as its original does under the resolver the validator would use there), so the compiler's own
``Draft202012Validator`` is built over it. A reference that does not resolve is linked to a
pointer with no target; the compiler reports it where it meets it (``Target.error``).

Example::

    >>> linked = LinkedSchema({"$id": "http://example.com/root.json",
    ...                        "properties": {"a": {"$ref": "item.json"}}},
    ...                       resources={"http://example.com/item.json": {"type": "integer"}})
    >>> ref = linked.root["properties"]["a"]["$ref"]
    >>> ref, linked.target(ref).contents, linked.target(ref).path
    ('#/$defs/1', {'type': 'integer'}, 'http://example.com/item.json#')
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema_specifications
from referencing import Registry, Resource
from referencing.exceptions import InvalidAnchor, NoSuchAnchor, PointerToNowhere, Unresolvable
from referencing.jsonschema import DRAFT202012, DynamicAnchor

from .errors import SchemaError
from .schema_check import check_schema
from .schema_dialects import (INTEGER_TEXT, LATEST, REF_ALONE, Untranslatable, dialect, name, specification,
                              translate)
from .schema_types import escape_pointer

# Where draft 2020-12 keeps subschemas (``referencing.jsonschema.DRAFT202012``'s lists, which the
# validator follows when it descends); $defs, definitions and contentSchema are never evaluated.
_EVOLVED = frozenset({"not", "if", "contains"})  # read by validator.evolve(schema=...).is_valid
_IN_VALUE = frozenset({"additionalProperties", "contains", "else", "if", "items", "not", "propertyNames",
                       "then", "unevaluatedItems", "unevaluatedProperties"})
_IN_SUBARRAY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_IN_SUBVALUES = frozenset({"dependentSchemas", "patternProperties", "properties"})
_NOT_EVALUATED = frozenset({"$defs", "definitions", "contentSchema"})
# Dropped from the copies: identifiers (the copies are placeless) and what is never evaluated.
_DROPPED = frozenset({"$id", "$anchor", "$dynamicAnchor", "$schema"}) | _NOT_EVALUATED
# What draft 2020-12's annotation collection (jsonschema._utils.find_evaluated_*) reads of a
# schema's own keywords, and the in-place applicators it follows.
_ANNOTATING = ("properties", "patternProperties", "additionalProperties", "unevaluatedProperties",
               "dependentSchemas", "items", "prefixItems", "contains", "unevaluatedItems", "$ref",
               "$dynamicRef", "allOf", "anyOf", "oneOf", "if", "then", "else")


_ABSENT = object()


@dataclass
class Target:
    """What a reference of the linked document stands for.

    ``contents`` is the linked copy of the target; ``path`` where it is, for messages (``#/...``
    in the root document, ``<uri>#/...`` in a resource, else the absolute reference). Where the
    reference does not resolve, ``error`` is (keyword, message, unsupported): unsupported ones
    become ``UnsupportedSchemaError``, the others (dangling pointers, unknown anchors)
    ``SchemaError``.
    """
    ref: str
    contents: Any = True
    path: str = "#"
    error: tuple[str, str, bool] | None = None


class LinkedSchema:
    """``root`` (with ``resources``: URI -> schema document) linked into one placeless document.

    ``root`` is the linked document; ``target(ref)`` resolves its references; ``is_recursive(ref)``
    says whether a target can reach itself (see the module docstring).
    """

    def __init__(self, root: Any, resources: Mapping[str, Any] | None = None):
        docs: list[tuple[str, Any]] = []
        for uri, doc in (resources or {}).items():
            if not isinstance(uri, str):
                raise SchemaError(f"resource URIs must be strings, not {uri!r}")
            if not isinstance(doc, (dict, bool)):
                raise SchemaError(f"a schema must be an object or a boolean, not {type(doc).__name__}", f"{uri}#")
            docs.append((uri, doc))
        # As the validator builds it: the official metaschemas, then the resources, then the root.
        # (Resources may be of another draft: their shapes are checked where they are referenced.)
        registry = jsonschema_specifications.REGISTRY.combine(Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT202012)) for uri, doc in docs))
        root_resource = DRAFT202012.create_resource(root)
        root_uri = root_resource.id() or ""
        dynamic_names, identified = _identifiers(root, top=False)
        for _, doc in docs:
            names, ids = _identifiers(doc, top=True)
            dynamic_names |= names
            identified |= ids
        registry = registry.with_resource(root_uri, root_resource)
        try:  # crawled once here: an uncrawled registry is crawled again on every anchor lookup (a
            # document without anchors or embedded identifiers has nothing to crawl for)
            resolver = (registry.crawl() if identified else registry).resolver(root_uri)
        except (AttributeError, TypeError):
            raise SchemaError("identifiers ($id, id, $anchor, $dynamicAnchor) must be strings") from None

        self._paths: dict[int, str] = {}  # filled when a path is first needed
        self._documents = [("", root), *docs]
        self._root_uri = root_uri
        # documents known to hold no anchor (when none has one, nothing was crawled)
        self._anchorless = set() if identified else {root_uri, *(uri for uri, _ in docs)}
        self._dynamic_names = sorted(_metaschema_dynamic_anchors() | dynamic_names)
        self._keys: dict[tuple, str] = {}
        self._targets: dict[str, Target] = {}
        self._edges: dict[str, set[str]] = {}
        self._pending: deque = deque()
        self._retold: set[int] = set()  # translated copies whose annotating keywords differ from the original's
        self._unevaluated: list[tuple[dict, str]] = []  # draft 2020-12 copies with unevaluated*, and their paths
        # the root is always read by draft 2020-12's rules (the validator's own class), whatever its $schema
        start = self._node(root, resolver, "#", LATEST, False, path="#")
        while self._pending:
            ref, contents, node_resolver, cls, alone = self._pending.popleft()
            edges: set[str] = set()
            self._targets[ref].contents = self._copy(contents, node_resolver, self._targets[ref].path, edges,
                                                     cls, alone)
            self._edges[ref] = edges
        self._check_annotations()
        for target in self._targets.values():  # the root document is checked by the caller
            if target.error is None and not target.path.startswith("#"):
                check_schema(target.contents, target.path)
        self.root = self._targets[start].contents
        if any(self._edges.values()) and isinstance(self.root, dict):
            defs = {ref.rsplit("/", 1)[1]: t.contents for ref, t in self._targets.items() if t.error is None}
            self.root = {**self.root, "$defs": defs}
        self._recursive = _on_cycles(self._edges)

    def target(self, ref: str) -> Target:
        got = self._targets.get(ref)
        if got is None:
            return Target(ref, error=("$ref", f"$ref {ref!r} is not a reference of the linked schema", False))
        return got

    def is_recursive(self, ref: str) -> bool:
        """Whether the target of ``ref`` can reach itself through references."""
        return ref in self._recursive

    # -- linking --------------------------------------------------------------------------------
    def _node(self, contents: Any, resolver: Any, absolute: str, cls: type, alone: bool,
              path: str | None = None) -> str:
        """The linked pointer of ``contents`` as reached with ``resolver``, evaluated by validator
        class ``cls``, its ``$ref`` hiding its siblings or not (``alone``), queued for copying."""
        alone = alone and isinstance(contents, dict) and contents.get("$ref") is not None  # else the same copy
        key = (id(contents), _base_uri(resolver), self._scope_key(resolver), cls, alone)
        ref = self._keys.get(key)
        if ref is None:
            ref = self._keys[key] = f"#/$defs/{len(self._targets)}"
            self._targets[ref] = Target(ref, path=path or self._path(contents, resolver, absolute))
            self._pending.append((ref, contents, resolver, cls, alone))
        return ref

    def _path(self, contents: Any, resolver: Any, absolute: str) -> str:
        """Where ``contents`` is, for messages: its JSON pointer in the document or resource
        (``<base URI>#/...``) that holds it, else the absolute reference that reached it."""
        if not isinstance(contents, dict):
            return absolute
        pointer = absolute[len(self._root_uri):]
        if absolute.startswith(self._root_uri) and pointer.startswith("#/") and "%" not in pointer \
                and _base_uri(resolver) == self._root_uri:
            return pointer  # a JSON pointer into the root document, spelled as the index spells it
        for uri, doc in self._documents:
            _index(doc, f"{uri}#", self._paths)
        self._documents = []
        if id(contents) not in self._paths:
            base = _base_uri(resolver)
            try:  # the resource at the base URI (a metaschema, a subresource with $id)
                _index(resolver.lookup(base).contents, f"{base}#", self._paths)
            except (Unresolvable, LookupError):
                pass
        return self._paths.get(id(contents), absolute)

    def _error(self, keyword: str, message: str, unsupported: bool) -> str:
        ref = f"#/$defs/unresolved-{len(self._targets)}"
        self._targets[ref] = Target(ref, error=(keyword, message, unsupported))
        return ref

    def _copy(self, schema: Any, resolver: Any, path: str, edges: set[str], cls: type, alone: bool) -> Any:
        """The linked copy of ``schema``, evaluated by validator class ``cls`` (reached with
        ``resolver``; ``alone``: its ``$ref`` hides its siblings): translated to draft 2020-12
        where ``cls`` is an older draft's (or ``alone`` drops siblings)."""
        if not isinstance(schema, dict):
            return schema
        if INTEGER_TEXT in schema:  # the compiler's private keyword: in a user's schema, an unknown one
            schema = {k: v for k, v in schema.items() if k != INTEGER_TEXT}
        origin: dict[str, str] = {}
        translated = cls is not LATEST or alone and schema.get("$ref") is not None
        if translated:
            original = schema
            try:
                schema, origin = translate(schema, cls, path, alone)
            except Untranslatable as exc:
                refused = {"$ref": self._error("$schema", f"{path} is evaluated by {name(cls)}'s rules "
                                               f"(its $schema or that of what reaches it), and {exc}", True)}
                self._retold.add(id(refused))
                return refused
        out: dict = {}
        dynamic = None
        for key, value in schema.items():
            if key in _DROPPED:
                continue
            at = f"{path}/{origin.get(key, key)}"
            if key in ("$ref", "$dynamicRef"):
                if not isinstance(value, str):
                    raise SchemaError(f"{key!r} must be a string, not {value!r}", path)
                linked = self._link(value, key, resolver, edges, cls)
                if key == "$ref":
                    out[key] = linked
                else:
                    dynamic = linked
            elif key in _IN_VALUE:
                out[key] = self._child(value, resolver, at, edges, cls, "evolve" if key in _EVOLVED else "descend")
            elif key in _IN_SUBARRAY and isinstance(value, list):
                out[key] = [self._child(v, resolver, f"{at}/{i}", edges, cls,
                                        "either" if key == "oneOf" and i else "descend") for i, v in enumerate(value)]
            elif key in _IN_SUBVALUES and isinstance(value, dict):
                out[key] = {k: self._child(v, resolver, f"{at}/{escape_pointer(k)}", edges, cls, "descend")
                            for k, v in value.items()}
            else:
                out[key] = value
        if dynamic is not None:
            # resolved in its dynamic scope already: from here on it is a plain reference
            if "$ref" in out:
                out["allOf"] = [*out.get("allOf", []), {"$ref": dynamic}]
            else:
                out["$ref"] = dynamic
        if translated and any(original.get(k, _ABSENT) is not schema.get(k, _ABSENT) for k in _ANNOTATING):
            self._retold.add(id(out))
        if cls is LATEST and ("unevaluatedProperties" in out or "unevaluatedItems" in out):
            self._unevaluated.append((out, path))
        return out

    def _child(self, sub: Any, resolver: Any, path: str, edges: set[str], cls: type, how: str) -> Any:
        """A subschema of one evaluated by ``cls``, reached as the validator reaches it (``how``):

        - "descend" (``validator.descend``): its identifier, as ``cls``'s specification reads
          it, sets its base URI; ``cls``'s rules decide whether ``$ref`` hides its siblings;
        - "evolve" (``validator.evolve(schema=sub).is_valid``: ``not``, ``if``, ``contains``):
          the base URI stays; the subschema's own class decides about ``$ref``'s siblings;
        - "either": ``oneOf`` past its first branch (read the first way while no earlier branch
          is valid, else the second): refused where the two readings may differ.

        Its own ``$schema`` sets its class either way."""
        if not isinstance(sub, dict):
            return sub
        own = dialect(sub, cls)
        if own is LATEST and cls is not LATEST:  # back to draft 2020-12: the root's check skipped it
            check_schema(sub, path)
        spec = specification(cls)
        try:  # without an identifier the base stays (in_subresource's own shortcut, minus a Resource)
            inner = resolver if spec.id_of(sub) is None else resolver.in_subresource(spec.create_resource(sub))
        except (AttributeError, TypeError):
            raise SchemaError("identifiers ($id, id) must be strings", path) from None
        if how == "either":
            moved = _base_uri(inner) != _base_uri(resolver) and _has_references(sub)
            hidden = (cls in REF_ALONE) != (own in REF_ALONE) and sub.get("$ref") is not None and any(
                k != "$ref" and k in own.VALIDATORS for k in sub)
            if moved or hidden:
                why = ("its identifier sets the base URI of its references only while no earlier branch is "
                       "valid" if moved else "its $ref hides its siblings only where an earlier branch is valid")
                keyword = "$id" if moved else "$schema"
                return {"$ref": self._error(keyword, f"the validator reads oneOf branch {path} in two ways: {why}", True)}
            how = "descend"
        if how == "evolve":
            return self._copy(sub, resolver, path, edges, own, own in REF_ALONE)
        return self._copy(sub, inner, path, edges, own, cls in REF_ALONE)

    def _check_annotations(self) -> None:
        """Refuse (``$schema``) each draft 2020-12 ``unevaluated*`` whose annotations may come from
        a translated copy whose annotating keywords differ from its original's: the validator
        collects annotations from the keywords of the original (``$ref`` siblings up to draft 7,
        ``items`` arrays, ...), whatever class evaluates it."""
        for node, path in self._unevaluated:
            seen: set[int] = set()
            stack: list = [node]
            while stack:
                s = stack.pop()
                if not isinstance(s, dict) or id(s) in seen:
                    continue
                seen.add(id(s))
                if id(s) in self._retold:
                    node.clear()
                    node["$ref"] = self._error(
                        "$schema", f"the annotations that 'unevaluatedProperties'/'unevaluatedItems' at {path} "
                        f"sees come from a subschema of an older draft, read by keywords that draft 2020-12 "
                        f"does not evaluate the same way", True)
                    break
                for key in ("allOf", "anyOf", "oneOf"):
                    if isinstance(s.get(key), list):
                        stack.extend(s[key])
                stack.extend(s.get(key) for key in ("if", "then", "else"))
                if isinstance(s.get("dependentSchemas"), dict):
                    stack.extend(s["dependentSchemas"].values())
                target = self._targets.get(s.get("$ref"))
                if target is not None and target.error is None:
                    stack.append(target.contents)

    def _link(self, ref: str, keyword: str, resolver: Any, edges: set[str], cls: type) -> str:
        """The linked pointer of the target of ``ref`` (in a schema evaluated by ``cls``), or of an
        error. The validator descends into the target with the referring schema's validator."""
        base = _base_uri(resolver)
        absolute = base + ref if ref.startswith("#") else urljoin(base, ref)
        try:
            resolved = resolver.lookup(ref)  # a $dynamicRef: in the resolver's dynamic scope
        except PointerToNowhere:
            return self._error(keyword, f"{keyword} {ref!r} does not resolve", False)
        except (NoSuchAnchor, InvalidAnchor):
            return self._error(keyword, f"{keyword} {ref!r} names no $anchor", False)
        except Unresolvable:
            document = urldefrag(absolute)[0]
            return self._error(keyword, f"{keyword} {ref!r} refers to {document!r}, which is not in `resources`", True)
        except (LookupError, ValueError, TypeError):  # a pointer step that is no index, ...
            return self._error(keyword, f"{keyword} {ref!r} does not resolve", False)
        contents = resolved.contents
        if not isinstance(contents, (dict, bool)):
            return self._error(keyword, f"{keyword} {ref!r} does not resolve to a schema", False)
        # evaluated by the class its own $schema names, else by the referring schema's
        own = dialect(contents, cls)
        if own is LATEST and cls is not LATEST:  # read as draft 2020-12 here, maybe only here
            check_schema(contents, absolute)
        linked = self._node(contents, resolved.resolver, absolute, own, cls in REF_ALONE)
        edges.add(linked)
        return linked

    def _scope_key(self, resolver: Any) -> tuple:
        """What of the resolver's dynamic scope can still matter: for each ``$dynamicAnchor`` name,
        the outermost resource in scope that has it (``DynamicAnchor.resolve`` picks that one),
        and whether the scope is empty (``Resolver._evolve`` pushes a base onto an empty scope
        even when the reference stays in its resource)."""
        if not self._dynamic_names:
            return ()
        scope = list(resolver.dynamic_scope())  # innermost first
        outermost = []
        for name in self._dynamic_names:
            found = None
            for uri, registry in scope:
                if uri in self._anchorless:  # (asking an uncrawled registry would crawl it)
                    continue
                try:
                    anchor = registry.anchor(uri, name).value
                except (Unresolvable, LookupError):
                    continue
                if isinstance(anchor, DynamicAnchor):
                    found = uri
            outermost.append(found)
        return bool(scope), tuple(outermost)


def _base_uri(resolver: Any) -> str:
    # ``referencing`` keeps a resolver's base URI private; it is what references resolve against.
    return resolver._base_uri


def _subschemas(schema: Any):
    """The subschemas of ``schema`` at draft 2020-12 positions, $defs included."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in _IN_VALUE or key == "contentSchema":
            yield value
        elif key in _IN_SUBARRAY and isinstance(value, list):
            yield from value
        elif key in _IN_SUBVALUES | {"$defs", "definitions"} and isinstance(value, dict):
            yield from value.values()


def _has_references(schema: Any) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$ref" in node or "$dynamicRef" in node:
                return True
            stack.extend(_subschemas(node))
    return False


def _identifiers(doc: Any, top: bool) -> tuple[set[str], bool]:
    """The ``$dynamicAnchor`` names in ``doc``, and whether it has anchors or identifiers that
    crawling would register (its top-level ``$id`` counted where ``top``)."""
    names: set[str] = set()
    identified = False
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$dynamicAnchor"), str):
                names.add(node["$dynamicAnchor"])
            identified = identified or "$anchor" in node or "$dynamicAnchor" in node or (
                ("$id" in node or "id" in node) and (top or node is not doc))
            stack.extend(_subschemas(node))
    return names, identified


@functools.cache
def _metaschema_dynamic_anchors() -> frozenset[str]:
    return frozenset().union(*(_identifiers(r.contents, True)[0] for r in jsonschema_specifications.REGISTRY.values()))


def _index(doc: Any, prefix: str, out: dict[int, str]) -> None:
    """Record the JSON pointer (after ``prefix``) of every object in ``doc`` (pointers reach anywhere)."""
    stack = [(doc, "")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, dict):
            out.setdefault(id(node), prefix + pointer)
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        # only containers hold objects: no pointer is spelled for the (many) scalars
        stack.extend((v, f"{pointer}/{escape_pointer(k)}") for k, v in items if isinstance(v, (dict, list)))


def _on_cycles(edges: dict[str, set[str]]) -> set[str]:
    """Nodes on a cycle, by Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: set[str] = set()
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    out.update(component)
    return out
