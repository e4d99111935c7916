"""UI catalogs, one module per language; console.i18n looks strings up in them."""
