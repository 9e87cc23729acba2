"""The chat command language: parsing text into typed commands, help, and handlers."""
