"""Reading `ansible-inventory --list` output: shared by the inventory plugin's integration tests, the default
scenario's test and bench/inventory.py."""


def plain(value):
    """ansible-inventory's JSON without its marks of untrusted text ({"__ansible_unsafe": text})."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def group_hosts(listing, group='all'):
    """The hosts of ``group``, its child groups' included (--list leaves empty groups out)."""
    entry = listing.get(group) or {}
    found = set(entry.get('hosts') or ())
    for child in entry.get('children') or ():
        found |= group_hosts(listing, child)
    return found
