// Progressive enhancement for the console: copy buttons. A file rather than
// an inline script because the pages' CSP allows only same-origin scripts.
// Without it the text stays selectable and the buttons stay hidden.
'use strict';

function announce(text) {
  const status = document.querySelector('.copy-status');
  if (status) status.textContent = text;
}

for (const button of document.querySelectorAll('button[data-copy]')) {
  button.hidden = false;
  button.addEventListener('click', async () => {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = 'value' in source ? source.value : source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
      announce('Copied to the clipboard.');
    } catch {
      // No clipboard access (an insecure origin, or permission refused):
      // select the text so Ctrl+C or Cmd+C copies it.
      if ('select' in source) {
        source.select();
      } else {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      announce('Selected: press Ctrl+C or Cmd+C to copy.');
    }
  });
}
