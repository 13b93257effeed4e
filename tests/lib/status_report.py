"""Reading what the pgha.cluster.status playbook printed: shared by its integration test and the Molecule test."""

import json
import re


def report(run):
    """The lines the playbook printed (the msg of its last task) in a PlaybookRun's output."""
    found = re.search(r'^TASK \[Print the status\].*?^ok: \[[^\]]+\] => (\{.*?^\})$', run.output, re.M | re.S)
    assert found, run.tail()
    return json.loads(found.group(1))['msg']


def section(lines, head):
    """The lines of the section whose first line starts with ``head`` (up to the next blank line)."""
    starts = [i for i, line in enumerate(lines) if line.startswith(head)]
    assert len(starts) == 1, 'expected one section starting with %r in:\n%s' % (head, '\n'.join(lines))
    rest = lines[starts[0]:]
    return rest[:rest.index('')] if '' in rest else rest


def cells(lines):
    """The table rows of a section, each as its list of cells (header line, lines above it and notes left out)."""
    header = next(i for i, line in enumerate(lines) if line.split()[:1] in (['MEMBER'], ['CLUSTER']))
    return [line.split() for line in lines[header + 1:] if not line.startswith('  !')]
