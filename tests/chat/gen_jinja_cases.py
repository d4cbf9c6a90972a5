#!/usr/bin/env python3
"""Regenerates jinja_cases.inc: small templates exercising tricky jinja2 semantics, with
the output Python's jinja2 gives in transformers' environment (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False, ...)).
Run: python3 tests/chat/gen_jinja_cases.py > tests/chat/jinja_cases.inc (needs jinja2)."""
import json
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters['tojson'] = tojson

MSGS = [{'role': 'system', 'content': 'Sys'}, {'role': 'user', 'content': 'Hi <b> & "q"'},
        {'role': 'assistant', 'content': 'ok', 'tool_calls': [{'function': {'name': 'f', 'arguments': {'a': 1}}}]}]
CASES = [
    ('scope: set in for does not leak', "{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}", {}),
    ('scope: namespace survives the loop', "{% set ns = namespace(x=0) %}{% for i in [1,2,3] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}", {}),
    ('scope: if opens no scope', "{% if true %}{% set y = 2 %}{% endif %}{{ y }}", {}),
    ('scope: macro sees its arguments and globals', "{% set g = 'G' %}{% macro m(a, b='B') %}{{ a }}{{ b }}{{ g }}{% endmacro %}{{ m(1) }}{{ m(1, b=3) }}", {}),
    ('undefined: prints empty, falsy, iterates empty', "[{{ foo }}]{{ foo is defined }}{% for x in foo %}a{% endfor %}{{ foo == bar }}{{ foo|length }}{{ foo|default('d') }}{{ 'x' if foo else 'y' }}", {}),
    ('undefined: missing key is undefined', "{{ messages[0].nope is defined }}{{ messages[0]['nope'] is defined }}{{ messages[9] is defined }}", {'messages': MSGS}),
    ('undefined: attribute of none is undefined', "[{{ none.x }}]{{ (none).x is defined }}", {}),
    ('whitespace: trim_blocks and lstrip_blocks', "a\n  {% if true %}\n  b\n  {% endif %}\n  c\n", {}),
    ('whitespace: lstrip not before expressions', "\n  {{ 'x' }}  {% if 1 %}  y  {% endif %}  \n  z", {}),
    ('whitespace: - markers strip newlines too', "x {%- if 1 -%} \n\n y \n\n {%- endif -%} z {{- ' w ' -}} \n v", {}),
    ('whitespace: + markers disable lstrip/trim', "a\n  {%+ if true %}\n  b\n  {% endif +%}\n  c", {}),
    ('whitespace: comments', "a\n  {# comment #}\n  b\n  {#- c2 -#}\n  c", {}),
    ('whitespace: - strips NBSP and U+3000', "a \u3000{%- if 1 %}b{% endif -%}\u00a0 c", {}),
    ('whitespace: CRLF normalized, one trailing newline dropped', "l1\r\nl2\r\n{% if 1 %}\r\nx\r\n{% endif %}\r\n", {}),
    ('whitespace: raw block', "{% raw %}{{ x }}{% endraw %}|{%- raw %} a {% endraw -%} |", {}),
    ('escapes in string literals', "{{ '\\n\\t\\'\"\\\\ \\x41\\u00e9\\101 \\q' }}", {}),
    ('adjacent string literals concatenate', "{{ 'a' 'b' \"c\" }}", {}),
    ('tojson: default separators, no HTML escaping', "{{ {'a': [1, 2.5, none, true], 'b': 'é\"<&>\\n\\u0001'}|tojson }}", {}),
    ('tojson: indent', "{{ {'a': [1, {'c': []}], 'b': {}}|tojson(indent=2) }}", {}),
    ('tojson: separators, sort_keys, ensure_ascii', "{{ [1,2]|tojson(separators=(',', ':')) }}{{ {'b':1,'a':2}|tojson(sort_keys=true) }}{{ 'é😀'|tojson(ensure_ascii=true) }}", {}),
    ('tojson: message objects keep key order', "{{ messages|tojson }}", {'messages': MSGS}),
    ('printing follows Python str()', "{{ none }} {{ true }} {{ [1,'a', none, 1.5] }} {{ {'a': 1, 'b': \"it's\"} }} {{ 1.0 }} {{ 1e20 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 1/3 }} {{ (1, 2) }} {{ (1,) }}", {}),
    ('printing: messages as repr', "{{ messages[2] }}", {'messages': MSGS}),
    ('trim and strip remove Unicode whitespace', "{{ '\u00a0 x \u3000\\t\\n'|trim }}|{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}.", {}),
    ('slices and negative indexes', "{{ 'hello'[1:3] }}{{ [1,2,3][-1] }}{{ [1,2,3][::-1] }}{{ 'héllo'[-2:] }}{{ 'abc'[5:] }}{{ [1,2,3,4,5][1::2] }}{{ '한국어'[1] }}{{ '한국어'|length }}", {}),
    ('arithmetic: repetition, modulo, floor division, ~', "{{ 'ab' * 3 }}{{ 3 * 'x' }}{{ 7 % 3 }}{{ -7 % 3 }}{{ 7 // -2 }}{{ 1 ~ 2 ~ none }}{{ 2 ** 10 }}{{ 7 / 2 }}{{ 4 / 2 }}{{ [1] + [2] }}{{ true + 1 }}", {}),
    ('precedence: filters bind to the operand, is binds tighter than not', "{{ 1 + [1,2]|length }}{{ not none is none }}{{ -1|abs }}{{ 'a' ~ 'b'|upper }}", {}),
    ('comparisons: deep equality and chaining', "{{ [1, [2, 3]] == [1, [2, 3]] }}{{ {'a': 1} == {'a': 1} }}{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' in ['a'] }}{{ 'b' not in 'abc' }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}", {}),
    ('macros: recursion and defaults', "{% macro f(n, sep='-') %}{% if n > 0 %}{{ n }}{{ sep }}{{ f(n - 1, sep) }}{% endif %}{% endmacro %}{{ f(4) }}{{ f(2, sep='+') }}", {}),
    ('macros: varargs, kwargs, caller', "{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}{% macro w(x) %}<{{ caller(x) }}>{% endmacro %}{% call(v) w(5) %}v={{ v }}{% endcall %}", {}),
    ('loop variables', "{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a','b') }};{% endfor %}", {}),
    ('for-if filters before counting', "{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.index }}{{ loop.last }}{% endfor %}", {}),
    ('for-else, break, continue', "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ('tuple unpacking', "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}", {}),
    ('filter and set blocks', "{% filter upper %}abc{{ 'd' }}{% endfilter %}{% set y %}  Y {{ 1 }}  {% endset %}[{{ y }}][{{ y|trim }}]", {}),
    ('markup: safe + plain escapes the plain side', "{{ 'a'|safe + '<b>' }}{{ '<b>' + 'a'|safe }}{{ '<&>\"\\''|e }}{{ 'x'|safe ~ '<' }}{{ '<x>'|safe|replace('x', '<y>') }}", {}),
    ('filters: select/reject/map/join', "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(', ') }}|{{ messages|rejectattr('role','equalto','user')|list|length }}|{{ messages|map(attribute='x', default='D')|list }}|{{ messages|selectattr('tool_calls', 'defined')|list|length }}", {'messages': MSGS}),
    ('filters: None selects nothing', "{{ none|selectattr('x')|list }}{{ none|map(attribute='x')|list }}", {}),
    ('filters: sort, dictsort, unique are case-insensitive by default', "{{ {'b': 1, 'A': 2, 'a': 3}|dictsort }}{{ ['b','A','a','C']|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['a','A','b','a']|unique|list }}{{ ['B','a']|sort(case_sensitive=true) }}", {}),
    ('filters: numbers', "{{ [1,2,3]|sum }}{{ 2.567|round(2) }}{{ 2.5|round }}{{ '42'|int }}{{ 'x'|int }}{{ -3|abs }}{{ 3.7|int }}{{ [1,5,3]|max }}{{ [4,2,8]|min }}", {}),
    ('filters: strings', "{{ 'hello world-foo(bar'|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'ab'|center(6) }}|{{ [1,2,3,4,5]|batch(2)|list }}|{{ [1,2,3]|first }}{{ [1,2,3]|last }}|{{ 'abc'|list }}|{{ 12|string }}", {}),
    ('filters: indent', "{{ 'text\\nline2\\n\\nline4'|indent(2) }}|{{ 'a\\nb'|indent(2, first=true) }}|{{ 'a\\n\\nb'|indent(4, blank=true) }}|{{ 'x\\n'|indent }}", {}),
    ('filters: default with boolean', "{{ x|default('d', true) }}{{ ''|default('e', true) }}{{ ''|default('f') }}{{ none|default('g') }}", {}),
    ('methods: str', "{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a b c'.rsplit(' ', 1) }}{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x','c')) }}{{ 'abc'.upper() }}{{ 'hello world'.title() }}{{ 'aXa'.replace('a','b') }}{{ '-'.join(['a','b']) }}{{ 'abc'.find('c') }}", {}),
    ('methods: dict', "{% set d = {'a': 1, 'items': 2} %}{{ d.get('x', 'dflt') }}{{ d.get('a') }}{{ d.get('zz') }}{{ d.keys()|list }}{{ d['items'] }}{{ d.items()|list }}", {}),
    ('tests', "{{ 'x' is string }}{{ 1 is number }}{{ 1 is integer }}{{ true is integer }}{{ 6 is divisibleby 3 }}{{ [] is sequence }}{{ {} is mapping }}{{ 'a' is iterable }}{{ x is iterable }}{{ none is none }}{{ true is true }}{{ 1 is true }}{{ 3 is odd }}{{ 'ab' is lower }}", {}),
    ('percent formatting and str.format', "{{ '%s and %d, %.2f %r' % ('x', 3, 2.5, 'q') }}{{ 'hi %s' % 'you' }}{{ '{} {}'.format(1, 'a') }}", {}),
    ('range, dict, with', "{{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ dict(a=1) }}{% with a = 1 %}{{ a }}{% endwith %}[{{ a }}]", {}),
    ('big integer literal becomes a float', "{{ 10000000000000000000000 > 1 }}", {}),
]

def c_str(s):
    out = []
    for ch in s.encode('utf-8'):
        c = chr(ch)
        if c == '\\': out.append('\\\\')
        elif c == '"': out.append('\\"')
        elif c == '\n': out.append('\\n')
        elif c == '\r': out.append('\\r')
        elif c == '\t': out.append('\\t')
        elif 32 <= ch < 127: out.append(c)
        else: out.append('\\%03o' % ch)
    return '"' + ''.join(out) + '"'

print('/* Generated by gen_jinja_cases.py from Python jinja2 3.1 (transformers environment). */')
for name, src, vars in CASES:
    out = env.from_string(src).render(**vars)
    print('{ %s,\n  %s,\n  %s,\n  %s },' % (c_str(name), c_str(src), c_str(json.dumps(vars, ensure_ascii=False)), c_str(out)))
