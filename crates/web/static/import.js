// Reads a chosen CSV file into the form's text area, so the import form posts it as text.
document.querySelectorAll('input[type=file][data-fills]').forEach((input) => {
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    const target = document.getElementById(input.dataset.fills);
    if (!file || !target) return;
    file.text().then((text) => { target.value = text; });
  });
});
