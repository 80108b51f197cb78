"""The API's views, one blueprint per concern: multipart uploads, objects."""
