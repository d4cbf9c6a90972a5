#!/usr/bin/env python3
"""line-counts.py — lines of C per module of src/ at some commits, as a Markdown table: lines
(.c, .h and .inc files), files, the largest file, and functions over 100 and over 150 lines
(their extent as Universal Ctags reports it, `end:` field). Issue 15's before/after table.

    scripts/line-counts.py REV [REV ...]      # e.g. c25803b main
    scripts/line-counts.py --long N           # the working tree's functions in src/ over N lines

Needs git and universal-ctags on PATH; reads the commits with `git archive`, so the working
tree is left alone.
"""
import os
import subprocess
import sys
import tempfile

EXTS = ('.c', '.h', '.inc')


def function_lengths(root):
    """(file, name, lines) of every C function definition below root."""
    out = subprocess.run(['ctags', '-R', '--languages=C', '--langmap=C:+.inc', '--kinds-C=f', '--fields=+ne', '-x',
                          '--_xformat=%{end} %{line} %N %F', root], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        end, start, name, path = line.split(' ', 3)
        yield path, name, int(end) - int(start) + 1


def counts(rev):
    """module -> (files, lines, largest file's lines, functions > 100, functions > 150)."""
    with tempfile.TemporaryDirectory() as d:
        arch = subprocess.run(['git', 'archive', rev, 'src'], capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', d], input=arch, check=True)
        src = os.path.join(d, 'src')
        res = {}
        for m in sorted(os.listdir(src)):
            mdir = os.path.join(src, m)
            if not os.path.isdir(mdir):
                continue
            sizes = []
            for base, _, files in os.walk(mdir):
                for f in files:
                    if f.endswith(EXTS):
                        with open(os.path.join(base, f), 'rb') as fh:
                            sizes.append(fh.read().count(b'\n'))
            lens = [n for _, _, n in function_lengths(mdir)]
            res[m] = (len(sizes), sum(sizes), max(sizes, default=0), sum(n > 100 for n in lens),
                      sum(n > 150 for n in lens))
        return res


def main():
    revs = sys.argv[1:]
    if len(revs) == 2 and revs[0] == '--long':
        for path, name, n in sorted(function_lengths('src'), key=lambda t: -t[2]):
            if n > int(revs[1]):
                print(f'{n:5d} {name} {path}')
        return
    if not revs:
        sys.exit('usage: scripts/line-counts.py REV [REV ...] | --long N')
    data = {r: counts(r) for r in revs}
    mods = sorted({m for r in revs for m in data[r]})
    last = revs[-1]
    arrow = ' → '.join
    print('| module | ' + ' | '.join(f'lines at {r}' for r in revs) + f' | files at {last} | largest file | '
          'functions > 100 lines | functions > 150 lines |')
    print('| --- |' + ' ---: |' * (len(revs) + 4))
    total = {r: [0, 0, 0, 0, 0] for r in revs}
    for m in mods:
        cell = lambda r, i: str(data[r][m][i]) if m in data[r] else '–'
        for r in revs:
            if m in data[r]:
                for i in range(5):
                    total[r][i] = max(total[r][i], data[r][m][i]) if i == 2 else total[r][i] + data[r][m][i]
        print(f'| `{m}` | ' + ' | '.join(cell(r, 1) for r in revs) + f' | {cell(last, 0)} | ' +
              arrow(cell(r, 2) for r in revs) + ' | ' + arrow(cell(r, 3) for r in revs) + ' | ' +
              arrow(cell(r, 4) for r in revs) + ' |')
    print('| **all of src/** | ' + ' | '.join(str(total[r][1]) for r in revs) + f' | {total[last][0]} | ' +
          arrow(str(total[r][2]) for r in revs) + ' | ' + arrow(str(total[r][3]) for r in revs) + ' | ' +
          arrow(str(total[r][4]) for r in revs) + ' |')


if __name__ == '__main__':
    main()
