"""Look at a built HTML page the way a reader's browser shows it.

Drives Debian's headless Chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so only the Python standard library is needed. For one
page it records every request the page made, waits until MathJax has
typeset, inspects the DOM and saves a full-length screenshot.

Command line (prints the report as JSON)::

    python -m tools.browser _build/html/chapter_hpo/index.html shot.png
"""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--mute-audio',
    '--hide-scrollbars', '--remote-debugging-pipe']

# Evaluated in the page once it has loaded: waits for MathJax and images.
SETTLE_JS = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = () => Array.from(document.images);
  for (let i = 0; i < 100 && !images().every(im => im.complete); i++) {
    await new Promise(r => setTimeout(r, 50));
  }
  return true;
})()
"""

# What the report says about the page, computed in the page.
INSPECT_JS = """
(() => {
  const main = document.querySelector('.page-content') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container')
       .forEach(e => e.remove());
  const text = clone.textContent;
  const math = Array.from(document.querySelectorAll('.math'));
  const scroller = document.querySelector('.mdl-layout__content');
  return {
    title: document.title,
    mathjax_version: window.MathJax && MathJax.version || null,
    math_elements: math.length,
    math_unrendered: math.filter(
        e => !e.querySelector('mjx-container')).length,
    mjx_containers: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    raw_tex: ['$$', '\\\\(', '\\\\)', '\\\\[', '\\\\]'].filter(
        s => text.includes(s)),
    // Markdown or d2lbook markup that did not turn into HTML
    raw_markup: ['``', '**', '$', ':cite', ':numref:', ':ref:', ':label:',
                 ':eqref:', ':eqlabel:', ':width:'].filter(
        s => text.includes(s)),
    images: Array.from(document.images).map(im => ({
        src: im.currentSrc || im.src, complete: im.complete,
        natural_width: im.naturalWidth})),
    copy_buttons: document.querySelectorAll('a.copybtn').length,
    // the code cells that d2l.js gives a copy button
    code_cells: document.querySelectorAll(
        'div.highlight-default:not(.output) pre, div.highlight-bash pre, ' +
        'div.highlight-sh pre, div.highlight-python pre').length,
    height: Math.max(document.body.scrollHeight,
                     scroller ? scroller.scrollHeight : 0),
  };
})()
"""


class DevToolsPipe:
    """A minimal DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix='chromium-profile-')
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds():  # in the child: our pipe ends become fds 3 and 4
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # dup2 makes them inheritable
            os.dup2(high_w, 4)

        chromium = shutil.which('chromium') or '/usr/bin/chromium'
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f'--user-data-dir={self.profile}',
             'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=wire_fds, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b''
        self._next_id = 0
        self.events = []

    def close(self):
        try:
            self.send('Browser.close', timeout=10)
        except Exception:  # already gone: fall through to terminate
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_message(self, deadline):
        while b'\0' not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError('no answer from Chromium')
            if self.proc.poll() is not None:
                raise RuntimeError('Chromium exited with code '
                                   f'{self.proc.returncode}')
            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError('Chromium closed the pipe')
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b'\0', 1)
        return json.loads(raw)

    def send(self, method, session=None, timeout=None, **params):
        """Send a command and return its result; keep events on the way."""
        self._next_id += 1
        message = {'id': self._next_id, 'method': method, 'params': params}
        if session:
            message['sessionId'] = session
        os.write(self._to_browser, json.dumps(message).encode() + b'\0')
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get('id') == self._next_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method}: {reply["error"]}')
                return reply.get('result', {})
            if 'method' in reply:
                self.events.append(reply)

    def wait_for(self, method, after=0, timeout=None):
        """Wait for an event ``method``, the ``after``-th event or later."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for event in self.events[after:]:
                if event['method'] == method:
                    return event
            reply = self._read_message(deadline)
            if 'method' in reply:
                self.events.append(reply)


def inspect_page(html_file, screenshot=None, width=1280, max_height=12000):
    """Open ``html_file`` from disk; return what a reader would get.

    The report (a dict) has the page's DOM facts (see ``INSPECT_JS``),
    ``requests`` (every URL the page asked for), ``failed`` (requests that
    failed, with the error), ``exceptions`` and ``console_errors``.
    """
    url = Path(html_file).resolve().as_uri()
    with DevToolsPipe() as cdp:
        target = cdp.send('Target.createTarget', url='about:blank')
        session = cdp.send('Target.attachToTarget', flatten=True,
                           targetId=target['targetId'])['sessionId']
        for domain in ('Page', 'Network', 'Runtime', 'Log'):
            cdp.send(f'{domain}.enable', session)
        cdp.send('Emulation.setDeviceMetricsOverride', session, width=width,
                 height=900, deviceScaleFactor=1, mobile=False)
        seen = len(cdp.events)
        cdp.send('Page.navigate', session, url=url)
        cdp.wait_for('Page.loadEventFired', after=seen)
        cdp.send('Runtime.evaluate', session, expression=SETTLE_JS,
                 awaitPromise=True)
        time.sleep(0.5)  # let late scripts (copy buttons) finish
        report = cdp.send('Runtime.evaluate', session, expression=INSPECT_JS,
                          returnByValue=True)['result']['value']
        if screenshot:
            height = min(max_height, max(900, int(report['height'])))
            cdp.send('Emulation.setDeviceMetricsOverride', session,
                     width=width, height=height, deviceScaleFactor=1,
                     mobile=False)
            time.sleep(0.3)
            data = cdp.send('Page.captureScreenshot', session,
                            format='png')['data']
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(data))
        events = [e for e in cdp.events if e.get('sessionId') == session]
    report['url'] = url
    report['requests'] = [e['params']['request']['url'] for e in events
                          if e['method'] == 'Network.requestWillBeSent']
    ids = {e['params']['requestId']: e['params']['request']['url']
           for e in events if e['method'] == 'Network.requestWillBeSent'}
    report['failed'] = [
        (ids.get(e['params']['requestId'], '?'), e['params']['errorText'])
        for e in events if e['method'] == 'Network.loadingFailed']
    report['exceptions'] = [
        e['params']['exceptionDetails'].get('exception', {}).get(
            'description') or e['params']['exceptionDetails'].get('text')
        for e in events if e['method'] == 'Runtime.exceptionThrown']
    report['console_errors'] = [
        e['params']['entry']['text'] for e in events
        if e['method'] == 'Log.entryAdded'
        and e['params']['entry']['level'] == 'error']
    return report


if __name__ == '__main__':
    page = sys.argv[1]
    shot = sys.argv[2] if len(sys.argv) > 2 else None
    print(json.dumps(inspect_page(page, shot), indent=1))
