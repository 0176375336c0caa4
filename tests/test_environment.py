"""requirements.txt is the one list of pins; environment.yml mirrors it."""
import importlib.metadata
import re

from conftest import ROOT

# name, optional extras (``ray[tune]``), version
PIN = re.compile(r'^([A-Za-z0-9_.\-]+)(?:\[[A-Za-z0-9_,\-]+\])?==([^\s#]+)')


def requirement_pins():
    pins, no_deps = {}, set()
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
            if 'no-deps' in line:
                no_deps.add(m.group(1).lower())
        else:
            assert not line.strip() or line.startswith('#'), (
                f'requirements.txt: every package must be pinned: {line!r}')
    return pins, no_deps


def environment_pins():
    text = (ROOT / 'environment.yml').read_text()
    pip_part = text.split('- pip:', 1)[1]
    pins = {}
    for line in pip_part.splitlines():
        m = re.match(r'^\s+-\s+(.*)$', line)
        if m:
            pm = PIN.match(m.group(1))
            assert pm, f'environment.yml: unpinned pip entry {line!r}'
            pins[pm.group(1).lower()] = pm.group(2)
    return pins, text


def test_environment_yml_agrees_with_requirements():
    pins, no_deps = requirement_pins()
    env, text = environment_pins()
    # conda cannot install a single package without its dependencies, so
    # the no-deps pins are an explicit extra step named in environment.yml
    assert env == {k: v for k, v in pins.items() if k not in no_deps}
    for name in no_deps:
        assert f'pip install --no-deps {name}=={pins[name]}' in text
    assert re.search(r'^\s+- python=3\.11$', text, re.M)


def test_core_pins():
    pins, no_deps = requirement_pins()
    assert pins['torch'] == '2.14.1' and pins['torchvision'] == '0.29.1'
    assert pins['syne-tune'] == '0.16.0'
    assert pins['d2l'] == '1.0.3' and 'd2l' in no_deps
    assert pins['d2lbook'] == '1.0.3' and pins['pybtex'] == '0.24.0'


def test_installed_versions_are_the_pinned_ones():
    pins, _ = requirement_pins()
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins
