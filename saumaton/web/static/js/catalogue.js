// The catalogue forms. A barcode scanner types the code and presses Enter: in a field
// marked data-enter-next, Enter moves the focus to the next field instead of sending a
// half-filled form.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || !(field instanceof HTMLInputElement)
      || !field.hasAttribute("data-enter-next") || !field.form) return;
  event.preventDefault();
  const fields = Array.from(field.form.elements).filter((el) =>
    !el.disabled && el.type !== "hidden" && el.tabIndex >= 0 && el.getClientRects().length > 0);
  const next = fields[fields.indexOf(field) + 1];
  if (next) next.focus();
});
