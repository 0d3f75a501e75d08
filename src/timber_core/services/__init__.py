"""Services: ``base.BaseService``, the shared ``persistence`` services and ``vector`` search."""
