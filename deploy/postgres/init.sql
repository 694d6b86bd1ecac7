-- Each service owns its own database (the contract's GATHER_DATABASE_URL with {service}).
CREATE DATABASE gather_events;
CREATE DATABASE gather_signup;
CREATE DATABASE gather_notifications;
