"""The contact base: phone numbers, the contact service (add, edit, erase,
search), the Contacts table's paging, the CSV importer and exporter."""
