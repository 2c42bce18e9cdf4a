"""Views: the summary report built from the metadata store's stored figures."""
