/* MDX Hub: the few behaviours that need script. Everything works without it. */
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches || !box.matches("input[data-select-all]")) return;
  var form = box.closest("form");
  form.querySelectorAll('input[type=checkbox][name=items]').forEach(function (item) { item.checked = box.checked; });
});
